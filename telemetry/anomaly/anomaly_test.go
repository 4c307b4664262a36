package anomaly

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/telemetry/runs"
)

// synthetic records a run of n one-second samples: a leaking workload
// (RSS +200 KiB/s from 8 MiB, one more descriptor every 5 s), a flat one
// with noise, a service whose RSS grows during warm-up only, and a
// workload whose goodput halves at 40 s while its latency stays.
func synthetic(t *testing.T, n int) *runs.Run {
	t.Helper()
	start := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	rec, err := runs.Create(t.TempDir(), runs.Meta{Lab: "soak", Start: start})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(scale float64) float64 { return (rng.Float64() - 0.5) * scale }
	for i := range n {
		at := start.Add(time.Duration(i) * time.Second)
		warm := min(float64(i), 3) / 3
		err := rec.Process(at,
			runs.ProcessSample{Host: "a", Process: "leaky", Kind: "workload", Processes: 2,
				RSSBytes: 8<<20 + float64(i)*(200<<10) + noise(64<<10), OpenFDs: 6 + float64(i/5), CPUSeconds: float64(i) * 0.1},
			runs.ProcessSample{Host: "a", Process: "steady", Kind: "workload", Processes: 2,
				RSSBytes: 8<<20 + noise(256<<10), OpenFDs: 6, CPUSeconds: float64(i) * 0.1},
			runs.ProcessSample{Host: "a", Process: "babeld", Kind: "service", Processes: 1,
				RSSBytes: 2<<20 + warm*(4<<20) + noise(16<<10), OpenFDs: 9, CPUSeconds: 1},
		)
		if err != nil {
			t.Fatal(err)
		}
		goodput := 1000.0
		if i >= 40 {
			goodput = 500
		}
		line := fmt.Sprintf(`{"goodput_bps":%.1f,"latency_ms":%.2f,"seq":%d}`, goodput+noise(60), 20+noise(4), i)
		if err := rec.WorkloadLine(at, "b", "bob", runs.Stdout, []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(runs.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	r, err := runs.Open(rec.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFind(t *testing.T) {
	r := synthetic(t, 60)
	all, err := Analyze(r, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	flagged := map[string]Finding{}
	for _, f := range all {
		t.Logf("%-5v %-11s %s: %s", f.Flagged, f.Kind, f.Series, f.Text)
		if f.Flagged {
			flagged[f.Kind+" "+f.Series] = f
		}
	}
	want := []string{
		`leak forgelab_process_resident_memory_bytes{host="a",process="leaky",kind="workload"}`,
		`leak forgelab_process_open_fds{host="a",process="leaky",kind="workload"}`,
		`drop forgelab_workload_value{host="b",workload="bob",field="goodput_bps"}`,
		// A step down is also a downward trend over the run.
		`degradation forgelab_workload_value{host="b",workload="bob",field="goodput_bps"}`,
	}
	for _, w := range want {
		if _, ok := flagged[w]; !ok {
			t.Errorf("not flagged: %s", w)
		}
	}
	if len(flagged) != len(want) {
		t.Errorf("flagged %d series, want %d: %v", len(flagged), len(want), flagged)
	}
	leak := flagged[want[0]]
	// 200 KiB/s over the 54 s after warm-up.
	if leak.Rate < 180<<10 || leak.Rate > 220<<10 {
		t.Errorf("leak rate %.0f B/s, want about %d", leak.Rate, 200<<10)
	}
	drop := flagged[want[2]]
	if drop.At < 38 || drop.At > 42 || drop.Change > -0.4 {
		t.Errorf("drop at t=%.1f by %.2f, want about t=40 by -0.5", drop.At, drop.Change)
	}
	found, err := Find(r, Options{})
	if err != nil || len(found) != len(want) {
		t.Errorf("Find = %d findings (%v), want %d", len(found), err, len(want))
	}
}

// A slow leak that a short run cannot show is not flagged, and neither
// is a series too short to test.
func TestFindShortRuns(t *testing.T) {
	r := synthetic(t, 8)
	found, err := Find(r, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 0 {
		t.Errorf("8 samples: flagged %v", found)
	}
}

func TestClassify(t *testing.T) {
	for field, want := range map[string]string{
		"rss_bytes": "resource", "heap.alloc": "resource", "open_fds": "resource",
		"latency_ms": "latency", "rtt": "latency", "p99": "latency",
		"goodput_bps": "throughput", "delivery": "throughput", "rate": "throughput",
		"seq": "", "sent": "", "bytes": "",
	} {
		if got := classify(field); got != want {
			t.Errorf("classify(%q) = %q, want %q", field, got, want)
		}
	}
}

func TestNoProcessesTable(t *testing.T) {
	rec, err := runs.Create(t.TempDir(), runs.Meta{Lab: "old"})
	if err != nil {
		t.Fatal(err)
	}
	rec.Close(runs.StatusComplete, "")
	r, _ := runs.Open(rec.Dir())
	found, err := Find(r, DefaultOptions())
	if err != nil || len(found) != 0 {
		t.Errorf("a run without processes.csv: %v, %v", found, err)
	}
	if !strings.Contains(fmt.Sprint(DefaultOptions()), "0.01") {
		t.Error("default alpha is not 0.01")
	}
}

package runs

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// t0 is the start of every fixture run: a wall time without a monotonic
// reading, so t is exact.
var t0 = time.Date(2026, 12, 1, 23, 45, 12, 123456789, time.UTC)

func at(secs float64) time.Time { return t0.Add(time.Duration(secs * float64(time.Second))) }

// fixture is what writeFixture recorded, for the tests to compare with
// what they read back.
type fixture struct {
	dir       string
	positions []PositionRow
	links     []LinkRow
	hosts     []HostRow
	events    []Event
	workload  []WorkloadRecord // b/bob
	files     map[string]int64 // path -> rows
}

// fixtureState is a shaper state at t=1: ab shaped both ways with
// counters, ca without counters (a shaper that cannot count) and down.
func fixtureState() netfabric.State {
	return netfabric.State{Shaper: "userspace", Links: []netfabric.LinkState{
		{Name: "ab", Up: true, Directions: []netfabric.Direction{
			{From: "a", Quality: netfabric.Impairment{RateBits: 10_000_000, Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 10, Duplicate: 1, Corrupt: 0.5, Reorder: 2},
				Counters: &netfabric.Counters{RxPackets: 100, RxBytes: 150000, TxPackets: 90, TxBytes: 135000, DropLoss: 10, DropQueue: 1, DropDown: 2, DropPartition: 3, DropError: 4, DropOverrun: 5, Queued: 7}},
			{From: "b", Quality: netfabric.Impairment{GE: netfabric.NewGilbertElliott(10, 40, math.NaN(), math.NaN())},
				Counters: &netfabric.Counters{RxPackets: 5}},
		}},
		{Name: "ca", Up: false, Directions: []netfabric.Direction{
			{From: "c", Quality: netfabric.Impairment{}},
		}},
	}}
}

// writeFixture records a run with every kind of series and file, and
// closes it with status.
func writeFixture(t *testing.T, root string) fixture {
	t.Helper()
	fp := HostFingerprint()
	fp.Accel, fp.Seed = "tcg", 42
	fp.Images = []Image{{Name: "debian-12", Digest: "sha256:abc"}}
	r, err := Create(root, Meta{Lab: "handover", Scenario: "drift", Variant: "babeld", Start: t0, Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{dir: r.Dir(), files: map[string]int64{}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.SaveLab([]byte("[lab]\nname = \"handover\"\n")))
	must(r.SaveScenario([]byte("[[scenario.event]]\nat = \"1s\"\ndo = \"link.set\"\n")))
	must(r.SavePlan([]byte(`{"hosts":["a","b","c"]}`)))
	r.SetNote("quiet", "load 0.05, no other VMs")

	// Events from every source; a failed one too.
	for _, e := range []Event{
		{Time: at(0), Source: SourceForgelab, Action: "run.start"},
		{Time: at(0.5), Source: SourceScenario, Action: "link.set", Args: map[string]any{"link": "ab", "loss": 0.1}, Took: 0.002},
		{Time: at(1), Source: SourceCLI, Action: "partition", Args: map[string]any{"groups": []any{[]any{"a"}, []any{"b", "c"}}}},
		{Time: at(1.5), Source: SourceScenario, Action: "link.set", Args: map[string]any{"link": "ab", "loss": 0.2}},
		{Time: at(2), Source: SourceAPI, Action: "host.kill", Args: map[string]any{"host": "x"}, Error: "unknown host \"x\""},
		{Time: at(2.5), Source: SourceUI, Action: "marker", Result: "handover"},
	} {
		must(r.Event(e))
		e.T = e.Time.Sub(t0).Seconds()
		f.events = append(f.events, e)
	}
	f.files[EventsFile] = 6

	// Positions at 10 Hz for a and b.
	for i := range 20 {
		secs := float64(i) / 10
		ps := []Position{{Host: "a", X: 0 - 10*secs, Y: 0.5, Z: 0}, {Host: "b", X: 100, Y: secs * secs, Z: 1e-7}}
		must(r.Position(at(secs), ps...))
		for _, p := range ps {
			f.positions = append(f.positions, PositionRow{Time: at(secs), T: secs, Position: p})
		}
	}
	f.files[PositionsFile] = 40

	// Links: the state at t=1 and t=2, and one hand-made sample.
	for _, secs := range []float64{1, 2} {
		must(r.Links(at(secs), fixtureState()))
		for _, s := range LinkSamples(fixtureState()) {
			f.links = append(f.links, LinkRow{Time: at(secs), T: secs, LinkSample: s})
		}
	}
	extra := LinkSample{Link: "a,b \"odd\"", From: "a", Up: 1, LossRatio: 0.25, RxPackets: math.NaN(), RxBytes: math.NaN(),
		TxPackets: math.NaN(), TxBytes: math.NaN(), DroppedLoss: math.NaN(), DroppedQueue: math.NaN(), DroppedDown: math.NaN(),
		DroppedPartition: math.NaN(), DroppedError: math.NaN(), DroppedOverrun: math.NaN(), DroppedPeerDown: math.NaN(), QueuedPackets: math.NaN()}
	must(r.LinkSample(at(2.5), extra))
	f.links = append(f.links, LinkRow{Time: at(2.5), T: 2.5, LinkSample: extra})
	f.files[LinksFile] = 7

	// Hosts: a VM with every figure, a physical host without a domain
	// and with figures missing.
	for _, secs := range []float64{0, 1} {
		hs := []HostSample{
			{Host: "a", Kind: "vm", Domain: "fl-ab12-a", Up: 1, CPUSeconds: 1.5 + secs, MemoryBytes: 512 << 20, BlockReadBytes: 4096, BlockWriteBytes: 8192,
				BlockReadRequests: 1, BlockWriteRequests: 2, NetRxBytes: 1000, NetTxBytes: 2000, NetRxPackets: 10, NetTxPackets: 20},
			{Host: "edge1", Kind: "physical", Up: secs, CPUSeconds: 3, MemoryBytes: math.NaN(), BlockReadBytes: math.NaN(), BlockWriteBytes: math.NaN(),
				BlockReadRequests: math.NaN(), BlockWriteRequests: math.NaN(), NetRxBytes: 5, NetTxBytes: 6, NetRxPackets: 7, NetTxPackets: 8},
		}
		must(r.Host(at(secs), hs...))
		for _, h := range hs {
			f.hosts = append(f.hosts, HostRow{Time: at(secs), T: secs, HostSample: h})
		}
	}
	f.files[HostsFile] = 4

	// Workloads: bob prints JSON lines (one with keys of forgelab's own,
	// one nested), a text line, and a line on stderr.
	lines := []struct {
		secs   float64
		stream Stream
		line   string
	}{
		{0.2, Stdout, `{"delivery": 1, "latency_ms": 2.5, "ok": true}`},
		{0.4, Stdout, `starting round 2`},
		{1.2, Stdout, `{"delivery":0.75,"time":"guest clock","t":99,"stats":{"lat":3}}` + "\r\n"},
		{1.3, Stderr, `warning: slow`},
		{2.2, Stdout, `{"delivery":0.5,"n":12345678901234567}`},
	}
	for _, l := range lines {
		must(r.WorkloadLine(at(l.secs), "b", "bob", l.stream, []byte(l.line)))
	}
	num := func(s string) any { return json.Number(s) }
	f.workload = []WorkloadRecord{
		{Time: at(0.2), T: 0.2, Fields: map[string]any{"delivery": num("1"), "latency_ms": num("2.5"), "ok": true}},
		{Time: at(1.2), T: 1.2, Fields: map[string]any{"delivery": num("0.75"), "workload_time": "guest clock", "workload_t": num("99"), "stats": map[string]any{"lat": num("3")}}},
		{Time: at(2.2), T: 2.2, Fields: map[string]any{"delivery": num("0.5"), "n": num("12345678901234567")}},
	}
	must(r.WorkloadLine(at(0.3), "a", "alice", Stdout, []byte(`{"sent": 10}`)))
	f.files["workloads/b-bob.jsonl"] = 3
	f.files["workloads/b-bob.stdout"] = 4
	f.files["workloads/b-bob.stderr"] = 1
	f.files["workloads/a-alice.jsonl"] = 1
	f.files["workloads/a-alice.stdout"] = 1

	// Files copied in.
	src := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(src, name)
		must(os.WriteFile(p, []byte(data), 0o644))
		return p
	}
	must(r.CopySerial("a", write("serial", "boot\nlogin: ")))
	must(r.CopyServiceLog("a", "babeld", write("svc", "route a->b via c\n")))
	must(r.CopyPcap("ab", write("pcap", "\xd4\xc3\xb2\xa1binary")))
	w, err := r.PcapWriter("ca.pcap")
	must(err)
	_, err = w.Write([]byte("\xd4\xc3\xb2\xa1"))
	must(err)
	must(w.Close())
	f.files["serial/a.log"] = 2
	f.files["services/a-babeld.log"] = 1
	f.files[LabFile] = 2
	f.files[ScenarioFile] = 3
	f.files[PlanFile] = 1
	must(r.Close(StatusComplete, ""))
	return f
}

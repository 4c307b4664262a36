package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/labs/bench"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/runs"
	"github.com/forgelab/forgelab/telemetry/stats"
)

// Bad input to forgelab bench: each refused before anything boots, with
// exit code 2 and a message that says what to do. (No VMs needed.)
func TestBenchBadInput(t *testing.T) {
	state := t.TempDir()
	// The example, next to a stand-in for its build (create checks that
	// deploy sources exist before anything else).
	src, err := os.ReadFile("../../examples/transport-bench.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	example := filepath.Join(dir, "transport-bench.toml")
	if err := os.MkdirAll(filepath.Join(dir, "transport", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "transport", "bin", "transport"), []byte("stand-in"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(example, src, 0o644); err != nil {
		t.Fatal(err)
	}
	main := &bench.Baseline{Name: "main", Lab: "transport-bench", Samples: bench.Samples{{
		Key: bench.Key{Mode: "native", Point: "clean", Metric: "goodput_mbps"}, Better: stats.HigherIsBetter,
		Values: []float64{30, 31, 29, 30, 30.5}, Runs: []string{"transport-bench/a", "transport-bench/b", "transport-bench/c", "transport-bench/d", "transport-bench/e"}}}}
	if err := bench.NewStore(state).Set(main); err != nil {
		t.Fatal(err)
	}
	bad := writeLab(t, `[lab]
name = "flbench-bad"
[[host]]
name = "a"
[[workload]]
name = "w"
host = "a"
command = "true"
start = "bench"
[bench]
[[bench.mode]]
name = "native"
workloads = ["nope"]
metrics = { goodput_mbps = "higher" }
`)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"bench"}, "usage: forgelab bench LAB.toml --runs N"},
		{"unknown flag", []string{"bench", "--bogus", "x", example}, "flag provided but not defined: -bogus"},
		{"missing baseline", []string{"bench", example, "--baseline", "nope"},
			`baseline "nope": no such baseline (there are: main); make it with ` + "`forgelab bench baseline set nope --from-last`"},
		{"too few runs for the baseline", []string{"bench", example, "--runs", "3", "--baseline", "main"},
			"--runs 3 is too few to decide at p < 0.01 against baseline main (5 runs per metric): the permutation test needs at least 5 runs on this side"},
		{"too few runs for the reference", []string{"bench", example, "--runs", "4", "--against-reference"},
			"--runs 4 is too few to compare modes with the reference at p < 0.01: need 5 runs per mode (--runs 5)"},
		{"unknown mode", []string{"bench", example, "--mode", "fast"},
			`mode "fast" is not in the [bench] section of ` + example + ` (modes: native, external, reference)`},
		{"unknown point", []string{"bench", example, "--point", "loss50"}, `point "loss50" is not in the [bench] section`},
		{"bad section", []string{"bench", bad}, bad + `:13: mode native: workload "nope" is not a [[workload]] of the lab file (workloads: w)`},
		{"bad tolerance", []string{"bench", example, "--tolerance", "lots"}, `--tolerance "lots" is not a percentage`},
		{"show missing", []string{"bench", "baseline", "show", "nope"}, `baseline "nope": no such baseline (there are: main)`},
		{"set nothing", []string{"bench", "baseline", "set", "x"}, "usage: forgelab bench baseline set NAME (RUN... | --from-last)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := forgelabIn(t, state, c.args...)
			if r.code != bench.ExitUsage || !strings.Contains(r.stderr, c.want) {
				t.Errorf("forgelab %s: exit %d, stderr:\n%s\nwant exit %d and %q", strings.Join(c.args, " "), r.code, r.stderr, bench.ExitUsage, c.want)
			}
		})
	}
	if left, _ := os.ReadDir(filepath.Join(state, "labs")); len(left) > 0 {
		t.Errorf("bad input made labs: %v", left)
	}
}

// The bench for real, on one small lab (2 VMs): build A of the transport
// example as baseline; build A again against it is not flagged (exit 0);
// build B (-slow 0.2: every transfer takes 1/0.8 as long) is, with exit
// code 3. Each run is a recorded run with its mode. A metric the
// workload does not print stops the bench at its first run.
//
// Measured here (2026-12-02, 1 MB transfers over 20 Mbit/s with 5 ms):
// build A 16.0 Mbit/s median (15.4-17.4), A again 16.1 (15.9-17.8), p=0.58,
// not flagged; build B 14.2 (13.2-14.4), -13.6 %, p=0.008, flagged. B was
// less than 20 % slower because A's transfers split between 0.48 s and
// 0.52 s (the rate limiter's burst), B's mostly took the faster: transfers
// are 2 MB now, so the burst counts half as much. 16 runs of 1.6-2.8 s;
// the whole test 77 s, 18 s of it the boot. A second try on a busier
// machine, with 2 MB, failed: the link's default queue dropped bursts of
// the 64-packet window (up to 511 retransmits a run), goodput fell from
// 14 to 6.6 Mbit/s within one bench, and B's change (p=0.063) could not be
// told from noise. Hence limit = 1000, and 6 runs against the baseline's 5
// (one overlapping run still gives p < 0.01). With them (same day, a busy
// machine): A 18.6 Mbit/s median (17.0-18.6); A again 17.3 (14.4-18.7),
// p=0.195, not flagged; B 11.5 (9.7-13.5), -37 %, p=0.004, flagged (more
// than 20 %: the machine got busier during the test; 115 retransmits in
// one run). 18 runs of 1.9-3.1 s; the whole test 93 s, about 20 s of it
// the boot.
func TestBenchRegression(t *testing.T) {
	requireVMs(t)
	start := time.Now()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", filepath.Join(dir, "transport", "bin", "transport"), "../../examples/transport")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build examples/transport: %v\n%s", err, out)
	}
	const lab = "flbench"
	labFile := func(name, flags, metrics string) string {
		text := `[lab]
name = "` + lab + `"
fabric = "userspace"
seed = 3

[[host]]
name = "a"

[[host]]
name = "b"

[[link]]
name = "ab"
endpoints = ["a", "b"]
rate = "20mbit"
limit = 1000            # no drops from a short queue: the window (64 packets) fits

[[deploy]]
src = "transport/bin"
dst = "/opt/transport"

[[service]]
name = "arq-server"
hosts = ["b"]
command = "/opt/transport/transport serve -listen :9100"

[[workload]]
name = "arq-native"
host = "a"
command = "/opt/transport/transport bench -to {{ ip \"b\" \"ab\" }}:9100 -bytes 2MB ` + flags + `"
start = "bench"
timeout = "60s"

[bench]
timeout = "70s"

[[bench.mode]]
name = "native"
workloads = ["arq-native"]
metrics = ` + metrics + `

[[bench.point]]
name = "d5"
link = "ab"
delay = "5ms"
`
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	metrics := `{ goodput_mbps = "higher", retransmits = "lower" }`
	buildA := labFile("a.toml", "", metrics)
	buildB := labFile("b.toml", "-slow 0.2", metrics)
	noMetric := labFile("c.toml", "", `{ goodput_mbps = "higher", latency_ms = "lower" }`)
	baseline := "flbench-main"
	forgelab(t, "destroy", lab)
	forgelab(t, "bench", "baseline", "rm", baseline)
	defer func() {
		mustForgelab(t, "destroy", lab)
		assertNothingLeft(t, lab)
		forgelab(t, "bench", "baseline", "rm", baseline)
	}()

	bench1 := func(file string, args ...string) result {
		t0 := time.Now()
		r := forgelab(t, append([]string{"bench", file}, args...)...)
		t.Logf("forgelab bench %s %s: exit %d in %s\n%s%s", filepath.Base(file), strings.Join(args, " "), r.code, time.Since(t0).Round(time.Second), r.stdout, lastN(r.stderr, 3000))
		return r
	}
	// Build A: the lab is made, one warm-up round, 5 runs.
	if r := bench1(buildA, "--runs", "5", "--warmup", "1"); r.code != 0 {
		t.Fatalf("bench of build A: exit %d", r.code)
	}
	mustForgelab(t, "bench", "baseline", "set", baseline, "--from-last")
	show := mustForgelab(t, "bench", "baseline", "show", "-o", "json", baseline)
	if !strings.Contains(show, `"goodput_mbps"`) || !strings.Contains(show, `"d5"`) {
		t.Errorf("baseline show: %s", show)
	}
	if ls := mustForgelab(t, "bench", "baseline", "ls"); !strings.Contains(ls, baseline) {
		t.Errorf("baseline ls: %s", ls)
	}

	// Build A again against it: not flagged.
	r := bench1(buildA, "--runs", "6", "--warmup", "0", "--baseline", baseline)
	if r.code != bench.ExitOK || !strings.Contains(r.stdout, "no regression") {
		t.Errorf("build A against its own baseline: exit %d, want 0 and \"no regression\"", r.code)
	}
	// Build B: 20 % slower, flagged.
	r = bench1(buildB, "--runs", "6", "--warmup", "0", "--baseline", baseline)
	if r.code != bench.ExitRegression || !strings.Contains(r.stdout, "REGRESSION in 1 metric(s): native d5 goodput_mbps (exit code 3)") {
		t.Errorf("build B against build A's baseline: exit %d, want %d and the regressed metric", r.code, bench.ExitRegression)
	}

	// Every run is a recorded run of its mode and point, links put back.
	list, err := runs.List(runs.Root(stateDir()), lab)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < 18 {
		t.Errorf("%d runs recorded, want 18 (6 + 6 + 6)", len(list))
	} else {
		run, err := runs.Open(list[0].Dir)
		if err != nil {
			t.Fatal(err)
		}
		if b := run.Meta.Bench; b == nil || b.Mode != "native" || b.Point != "d5" || run.Meta.Variant != "native" || run.Meta.Status != runs.StatusComplete {
			t.Errorf("last run: %+v bench %+v", run.Meta, run.Meta.Bench)
		}
	}
	var links netfabric.State
	if err := json.Unmarshal([]byte(mustForgelab(t, "link", "show", "-o", "json", lab)), &links); err != nil {
		t.Fatal(err)
	}
	for _, l := range links.Links {
		for _, d := range l.Directions {
			if d.Quality != (netfabric.Impairment{RateBits: 20e6, Limit: 1000}) || !l.Up {
				t.Errorf("%s from %s after the bench: %+v (up %v), want the declared 20mbit and no delay", l.Name, d.From, d.Quality, l.Up)
			}
		}
	}

	// A metric the workload does not print: the bench stops at its
	// first run, saying what the workload printed.
	r = bench1(noMetric, "--runs", "5", "--warmup", "1")
	if r.code != bench.ExitError || !strings.Contains(r.stderr, `no workload reported the metric "latency_ms" (arq-native on a printed bytes, goodput_mbps, retransmits, seconds)`) {
		t.Errorf("missing metric: exit %d, want %d and the fields printed", r.code, bench.ExitError)
	}
	t.Logf("TestBenchRegression took %s", time.Since(start).Round(time.Second))
}

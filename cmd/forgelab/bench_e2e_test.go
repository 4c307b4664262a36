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
// example is the reference mode, build A again and build B (-slow 0.2:
// every transfer takes 1/0.8 as long) are the other modes, interleaved
// run by run (A A' B A A' B ...) so that the machine's drift hits all
// three alike; --against-reference judges A' (not flagged) and B
// (flagged, exit code 3). The runs are then stored as a baseline. Each
// run is a recorded run with its mode. A metric the workload does not
// print stops the bench at its first run.
//
// Why interleaved rather than "A as a baseline, then A again, then B":
// in CI this test shares the machine with other packages' tests (image
// builds, booting guests), and a baseline measured a minute earlier
// drifted by 16 % from the same build measured later (2026-12-02: A
// 16.3 Mbit/s median as baseline, A again 14.1, p=0.004: a false
// regression). Measured before that change, with A and B each against a
// baseline of A: A 18.6 Mbit/s median, A again 17.3 (p=0.195), B 11.5
// (-37 %, p=0.004). The baseline path's verdicts are covered by
// labs/bench's TestJudgeBaseline.
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
	labFile := func(name, metrics string) string {
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
name = "arq-a"
host = "a"
command = "/opt/transport/transport bench -to {{ ip \"b\" \"ab\" }}:9100 -bytes 2MB"
start = "bench"
timeout = "60s"

[[workload]]
name = "arq-a-again"
host = "a"
command = "/opt/transport/transport bench -to {{ ip \"b\" \"ab\" }}:9100 -bytes 2MB"
start = "bench"
timeout = "60s"

[[workload]]
name = "arq-b"
host = "a"
command = "/opt/transport/transport bench -to {{ ip \"b\" \"ab\" }}:9100 -bytes 2MB -slow 0.2"
start = "bench"
timeout = "60s"

[bench]
timeout = "70s"
reference = "a"

[[bench.mode]]
name = "a"
kind = "reference"    # the same build as the others: what they are judged against
workloads = ["arq-a"]
metrics = ` + metrics + `

[[bench.mode]]
name = "a-again"
kind = "native"
workloads = ["arq-a-again"]
metrics = ` + metrics + `

[[bench.mode]]
name = "b"
kind = "native"
workloads = ["arq-b"]
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
	// Only goodput is judged: retransmits swing from 0 to hundreds between
	// runs of the same build on a busy machine.
	abFile := labFile("ab.toml", `{ goodput_mbps = "higher" }`)
	noMetric := labFile("c.toml", `{ goodput_mbps = "higher", latency_ms = "lower" }`)
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
	// The lab is made, one warm-up round, 10 runs of each build: with 6, a
	// CI run whose reference runs spread by ±35 % (retransmit storms under
	// TCG) left B's -23 % at p = 0.026.
	r := bench1(abFile, "--runs", "10", "--warmup", "1", "--against-reference")
	verdict := func(mode string) string {
		for _, line := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(line); len(f) > 3 && f[0] == mode && f[2] == "goodput_mbps" && strings.Contains(line, "reference a") {
				return f[len(f)-1]
			}
		}
		return ""
	}
	if v := verdict("a-again"); v == "" || v == "regression" {
		t.Errorf("build A against build A: verdict %q, want no regression", v)
	}
	if v := verdict("b"); v != "regression" {
		t.Errorf("build B against build A: verdict %q, want regression", v)
	}
	if r.code != bench.ExitRegression || !strings.Contains(r.stdout, "REGRESSION in 1 metric(s): b d5 goodput_mbps (exit code 3)") {
		t.Errorf("build B against build A: exit %d, want %d and only B's goodput named", r.code, bench.ExitRegression)
	}

	// The runs as a baseline for later benches.
	mustForgelab(t, "bench", "baseline", "set", baseline, "--from-last")
	show := mustForgelab(t, "bench", "baseline", "show", "-o", "json", baseline)
	if !strings.Contains(show, `"goodput_mbps"`) || !strings.Contains(show, `"d5"`) || !strings.Contains(show, `"a-again"`) {
		t.Errorf("baseline show: %s", show)
	}
	if ls := mustForgelab(t, "bench", "baseline", "ls"); !strings.Contains(ls, baseline) {
		t.Errorf("baseline ls: %s", ls)
	}

	// Every run is a recorded run of its mode and point, links put back.
	list, err := runs.List(runs.Root(stateDir()), lab)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < 33 {
		t.Errorf("%d runs recorded, want 33 (3 warm-up + 3 x 10)", len(list))
	} else {
		run, err := runs.Open(list[0].Dir)
		if err != nil {
			t.Fatal(err)
		}
		if b := run.Meta.Bench; b == nil || b.Mode != "b" || b.Point != "d5" || run.Meta.Variant != "b" || run.Meta.Status != runs.StatusComplete {
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
	if r.code != bench.ExitError || !strings.Contains(r.stderr, `no workload reported the metric "latency_ms" (arq-a on a printed bytes, goodput_mbps, retransmits, seconds)`) {
		t.Errorf("missing metric: exit %d, want %d and the fields printed", r.code, bench.ExitError)
	}
	t.Logf("TestBenchRegression took %s", time.Since(start).Round(time.Second))
}

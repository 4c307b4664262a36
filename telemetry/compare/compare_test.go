package compare

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgelab/forgelab/telemetry/compare/comparetest"
	"github.com/forgelab/forgelab/telemetry/runs"
	"github.com/forgelab/forgelab/telemetry/stats"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The terminal report of the fixture pair, pinned.
func TestTextGolden(t *testing.T) {
	root, good, plain := comparetest.Pair(t)
	rep, err := Load(root, []string{good.Name(), plain.Name()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteText(&b, rep); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "fixture.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./telemetry/compare -run TestTextGolden -update writes it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("terminal report differs from %s (-update rewrites it):\n%s", golden, b.String())
	}
}

// The statements carry the right numbers: each bucket's median over the
// run's own best bucket's.
func TestStatements(t *testing.T) {
	root, good, plain := comparetest.Pair(t)
	rep, err := Load(root, []string{good.Name(), plain.Name()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groupings) != 2 || rep.Groupings[0].Link != "ab" || rep.Groupings[1].By != "phase" {
		t.Fatalf("groupings %+v, want loss on ab (chosen: the link whose loss changes) and phases", rep.Groupings)
	}
	var heads []string
	for _, m := range rep.Metrics {
		if m.Headline {
			heads = append(heads, m.ID)
		}
	}
	if strings.Join(heads, " ") != "alice.delivery alice.rtt_p50_ms bob.received" {
		t.Errorf("headline metrics %v", heads)
	}
	for _, c := range []struct {
		group, metric string
		ofBest        [2]float64 // good, plain; NaN: no samples
		text          string
	}{
		{"0-1 %", "alice.delivery", [2]float64{1, 1}, "With 0-1 % loss on ab, good kept 100 % of its delivery (alice); plain 100 %."},
		{"1-5 %", "alice.delivery", [2]float64{0.96, 0.9}, "With 1-5 % loss on ab, good kept 96 % of its delivery (alice); plain 90 %."},
		{"5-10 %", "alice.delivery", [2]float64{0.95, 0.6}, "With 5-10 % loss on ab, good kept 95 % of its delivery (alice); plain 60 %."},
		{"10-100 % or down", "alice.delivery", [2]float64{0.9, 0}, "With 10-100 % loss on ab or ab down, good kept 90 % of its delivery (alice); plain 0 %."},
		{"5-10 %", "alice.rtt_p50_ms", [2]float64{1.5, 1.4}, "With 5-10 % loss on ab, good had rtt_p50_ms (alice) at 1.5 times its best; plain 1.4 times its best."},
		{"10-100 % or down", "alice.rtt_p50_ms", [2]float64{2, math.NaN()}, "With 10-100 % loss on ab or ab down, good had rtt_p50_ms (alice) at 2.0 times its best; plain no samples."},
		{"5-10 %", "bob.received", [2]float64{0.96, 0.8}, ""},
		{"45-60 s: ab down", "alice.delivery", [2]float64{0.9, 0}, "From 45 to 60 s (ab down), good kept 90 % of its delivery (alice); plain 0 %."},
		{"15-30 s: ab lossy", "bob.received", [2]float64{0.97, 0.95}, "From 15 to 30 s (ab lossy), good kept 97 % of its received (bob); plain 95 %."},
	} {
		var st *Statement
		for i := range rep.Statements {
			if s := rep.Statements[i]; s.Group == c.group && s.Metric == c.metric {
				st = &rep.Statements[i]
			}
		}
		if st == nil {
			t.Errorf("no statement on %s under %s", c.metric, c.group)
			continue
		}
		for i, want := range c.ofBest {
			got := st.OfBest[i]
			switch {
			case math.IsNaN(want) && got != nil:
				t.Errorf("%s %s run %d: share %v, want none (no samples)", c.group, c.metric, i, *got)
			case !math.IsNaN(want) && (got == nil || math.Abs(*got-want) > 1e-9):
				t.Errorf("%s %s run %d: share %v, want %v", c.group, c.metric, i, got, want)
			}
		}
		if c.text != "" && st.Text != c.text {
			t.Errorf("statement\n got %q\nwant %q", st.Text, c.text)
		}
	}
	// Each loss bucket holds the 15 samples of its phase.
	for _, row := range rep.Groupings[0].Rows {
		if row.Metric != "alice.delivery" {
			continue
		}
		for _, bt := range row.Runs {
			for _, b := range bt.Buckets {
				if b.N != 15 {
					t.Errorf("bucket %s: %d samples, want 15", b.Label, b.N)
				}
			}
		}
	}
}

// Medians, intervals and changes against the baseline.
func TestMetrics(t *testing.T) {
	root, good, plain := comparetest.Pair(t)
	rep, err := Load(root, []string{good.Name(), plain.Name()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Window != [2]float64{0, 60.25} {
		t.Errorf("window %v, want [0 60.25] (the last event)", rep.Window)
	}
	d := rep.Metric("alice.delivery")
	if d == nil || d.Direction != stats.HigherIsBetter || d.Class != "delivery" {
		t.Fatalf("alice.delivery: %+v", d)
	}
	// good: 15 each of 1, 0.96, 0.95, 0.9; plain: 1, 0.9, 0.6, 0.
	g, p := d.Runs[0].Summary, d.Runs[1].Summary
	if g.N != 60 || math.Abs(g.Median-0.955) > 1e-12 || math.Abs(p.Median-0.75) > 1e-12 {
		t.Errorf("medians %v %v, want 0.955 and 0.75 over 60 samples", g, p)
	}
	// 60 samples: the 95 % interval is between the 23rd and 38th values.
	if g.Lo != 0.95 || g.Hi != 0.96 || p.Lo != 0.6 || p.Hi != 0.9 {
		t.Errorf("intervals [%v %v] [%v %v]", g.Lo, g.Hi, p.Lo, p.Hi)
	}
	if c := d.Runs[1].Change; c == nil || math.Abs(*c-(0.75-0.955)/0.955) > 1e-12 || d.Runs[1].Overlap {
		t.Errorf("change %v overlap %v", c, d.Runs[1].Overlap)
	}
	if d.Runs[0].Change != nil {
		t.Errorf("the baseline has a change against itself: %v", *d.Runs[0].Change)
	}
	// ca carried the good variant's traffic from 30 s: 20000 B/s.
	ca := rep.Metric("link.ca.tx_bytes_per_second")
	if ca == nil || ca.Runs[0].Summary.Max != 20000 || ca.Runs[1].Summary.Max != 0 {
		t.Errorf("link.ca.tx_bytes_per_second: %+v", ca)
	}
	if s := rep.Metric("alice.sent"); s == nil || s.Direction != 0 || s.Headline {
		t.Errorf("alice.sent: %+v, want no direction (its name does not say)", s)
	}
	if len(rep.Texts) != 1 || rep.Texts[0].ID != "alice.dev" {
		t.Fatalf("texts %+v, want alice.dev (role never changes)", rep.Texts)
	}
	want := []Segment{{"eth1", 0.5, 30.5}, {"eth2", 30.5, 59.5}}
	if got := rep.Texts[0].Runs[0]; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("alice.dev of good: %+v, want %+v", got, want)
	}
	// JSON: no NaN anywhere, the statements there.
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Statements []Statement `json:"statements"`
		Metrics    []Metric    `json:"metrics"`
	}
	if err := json.Unmarshal(data, &back); err != nil || len(back.Statements) != len(rep.Statements) || len(back.Metrics) != len(rep.Metrics) {
		t.Errorf("JSON round trip: %v, %d statements", err, len(back.Statements))
	}
}

// Options: the baseline, a link, edges, metrics with a direction.
func TestOptions(t *testing.T) {
	root, good, plain := comparetest.Pair(t)
	rep, err := Load(root, []string{good.Name()}, Options{Baseline: plain.Name()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Runs[0].Label != "plain" || rep.Baseline != 0 || len(rep.Runs) != 2 {
		t.Errorf("baseline not in the list is added first: %+v", rep.Runs)
	}
	// Folders, as forgelab run prints them, from anywhere.
	if rep, err := Load(t.TempDir(), []string{good.Dir, plain.Dir}, Options{}); err != nil || rep.Runs[1].Label != "plain" {
		t.Errorf("runs by folder: %v", err)
	}
	if _, err := Load(root, []string{good.Dir, "/nonexistent/run"}, Options{}); err == nil || !strings.Contains(err.Error(), "run folder /nonexistent/run: no such run (no run.json there") {
		t.Errorf("missing folder: %v", err)
	}
	rep, err = Load(root, []string{good.Name(), plain.Name()}, Options{Baseline: plain.Name(), Link: "ca", Edges: []float64{0, 50, 100},
		Metrics: []string{"delivery", "sent:higher"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Baseline != 1 || len(rep.Metrics) != 2 || rep.Metrics[1].ID != "alice.sent" || rep.Metrics[1].Direction != stats.HigherIsBetter {
		t.Errorf("baseline %d metrics %+v", rep.Baseline, rep.Metrics)
	}
	if g := rep.Groupings[0]; g.Link != "ca" || len(g.Groups) != 2 || g.Rows[0].Runs[0].Buckets[0].N != 60 {
		t.Errorf("grouping %+v", g)
	}
	if c := rep.Metric("alice.delivery").Runs[0].Change; c == nil || math.Abs(*c-(0.955-0.75)/0.75) > 1e-12 {
		t.Errorf("change against plain: %v", c)
	}
}

// Bad input: each message names what is wrong and what to do.
func TestBadInput(t *testing.T) {
	root, good, plain := comparetest.Pair(t)
	other := comparetest.WriteRun(t, root, comparetest.Run{Lab: "fx-other", ID: "20261201T122000Z-0003", Variant: "good", Scenario: "storm"})
	wired := comparetest.WriteRun(t, root, comparetest.Run{Lab: "fx-wired", ID: "20261201T123000Z-0004", Variant: "wired",
		Plan: `{"Hosts": [{"Name": "a"}, {"Name": "b"}, {"Name": "d"}], "Links": [{"Name": "ab", "Endpoints": ["a", "b"]}, {"Name": "bd", "Endpoints": ["b", "d"]}]}`})
	cut := comparetest.WriteRun(t, root, comparetest.Run{Lab: "fx-cut", ID: "20261201T124000Z-0005", Variant: "cut", Status: runs.StatusIncomplete, Until: 40})
	quiet := comparetest.WriteRun(t, root, comparetest.Run{Lab: "fx-quiet", ID: "20261201T125000Z-0006", Variant: "quiet", NoAlice: true})
	for _, c := range []struct {
		name string
		refs []string
		opt  Options
		want []string
	}{
		{"one run", []string{good.Name()}, Options{}, []string{"at least 2 runs, got 1", "forgelab runs ls"}},
		{"no runs", nil, Options{}, []string{"at least 2 runs, got 0"}},
		{"unknown", []string{good.Name(), "fx-good/20261201T000000Z-ffff"}, Options{}, []string{"no such run", "forgelab runs ls fx-good"}},
		{"unknown id", []string{good.Name(), "20301201"}, Options{}, []string{"no such run"}},
		{"twice", []string{good.Name(), good.Name()}, Options{}, []string{"named twice"}},
		{"other scenario", []string{good.Name(), other.Name()}, Options{}, []string{"not comparable", `scenario "storm", not "drift"`, "variants of a lab file"}},
		{"other hosts", []string{good.Name(), wired.Name()}, Options{}, []string{"not comparable", "hosts has d and lacks c", "links has bd b-d and lacks bc b-c, ca c-a"}},
		{"incomplete", []string{good.Name(), cut.Name()}, Options{}, []string{"fx-cut/20261201T124000Z-0005 (incomplete: stopped by Ctrl-C)", "--allow-incomplete"}},
		{"metric missing", []string{good.Name(), quiet.Name()}, Options{Metrics: []string{"alice.delivery"}}, []string{"metric alice.delivery: run fx-quiet/20261201T125000Z-0006 has no such metric; it has bob.received"}},
		{"metric unknown", []string{good.Name(), plain.Name()}, Options{Metrics: []string{"goodput"}}, []string{"metric goodput: run fx-good/20261201T120000Z-0001 has no such metric; it has alice."}},
		{"metric no direction", []string{good.Name(), plain.Name()}, Options{Metrics: []string{"sent"}}, []string{"does not say whether higher or lower is better", "--metric sent:higher"}},
		{"metric bad direction", []string{good.Name(), plain.Name()}, Options{Metrics: []string{"sent:up"}}, []string{`"up" unknown`}},
		{"link missing", []string{good.Name(), plain.Name()}, Options{Link: "xy"}, []string{"link xy: run fx-good/20261201T120000Z-0001 has no samples of it in links.csv; its links: ab, ca"}},
		{"bad baseline", []string{good.Name(), plain.Name()}, Options{Baseline: "nosuch/20261201T000000Z-0000"}, []string{"baseline: run nosuch/", "no such run"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(root, c.refs, c.opt)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
	for _, c := range []struct{ in, want string }{
		{"0,1,x", `"x" is not a number`}, {"5", "at least 2 edges"}, {"0,5,5", "must increase"},
	} {
		if _, err := ParseEdges(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseEdges(%q): %v, want %q", c.in, err, c.want)
		}
	}
	if e, err := ParseEdges("0, 2%, 100"); err != nil || len(e) != 3 || e[1] != 2 {
		t.Errorf("ParseEdges: %v %v", e, err)
	}
}

// Warnings: an incomplete run allowed, another environment, a metric one
// run lacks.
func TestWarnings(t *testing.T) {
	root, good, _ := comparetest.Pair(t)
	cut := comparetest.WriteRun(t, root, comparetest.Run{Lab: "fx-cut", ID: "20261201T124000Z-0005", Variant: "cut", Status: runs.StatusIncomplete, Until: 40, Kernel: "6.12.0-other"})
	rep, err := Load(root, []string{good.Name(), cut.Name()}, Options{AllowIncomplete: true})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(rep.Warnings, "\n")
	for _, w := range []string{"fx-cut/20261201T124000Z-0005 is incomplete: stopped by Ctrl-C", "environments differ", "kernel: 6.1.0-test vs 6.12.0-other"} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings %q lack %q", all, w)
		}
	}
	if rep.Window[1] != 40.25 {
		t.Errorf("window %v: the incomplete run recorded to 40.25 s", rep.Window)
	}
	// Its last phase is cut at the window's end.
	g := rep.Groupings[1]
	if last := g.Groups[len(g.Groups)-1]; last.Label != "30-40 s: ab worse" {
		t.Errorf("phases %+v", g.Groups)
	}
}

// A bucket with fewer than MinBestSamples samples is never the
// reference, however good its median.
func TestRebase(t *testing.T) {
	var obs []stats.Observation
	for _, o := range [][2]float64{{0, 10}, {0, 11}, {0, 12}, {3, 8}, {7, 20}, {7, 22}, {7, 24}, {7, 26}} {
		obs = append(obs, stats.Observation{Condition: o[0], Value: o[1]})
	}
	bt, err := stats.Buckets(obs, []float64{0, 1, 5, 10}, stats.LowerIsBetter)
	if err != nil {
		t.Fatal(err)
	}
	if bt.Best != 1 {
		t.Fatalf("stats.Buckets picked %d", bt.Best)
	}
	rebase(&bt, stats.LowerIsBetter)
	if bt.Best != 0 || bt.Buckets[1].OfBest != 8.0/11 || bt.Buckets[2].OfBest != 23.0/11 || bt.Buckets[0].OfBest != 1 {
		t.Errorf("rebased: best %d, %+v", bt.Best, bt.Buckets)
	}
}

package runs

import (
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// TestMetricNamesMatchDocs: every value column is a metric of
// docs/metrics.md, with labels that metric has, so a recorded series and
// the live /metrics endpoint name the same thing.
func TestMetricNamesMatchDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	// Rows like | `a`, `b` | gauge | link, from | meaning |; the libvirt
	// section gives its labels once, above its table.
	labelsOf := map[string]string{}
	section := ""
	nameRE := regexp.MustCompile("`([a-z_.]+)`")
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "Labels:") {
			section = line
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`") {
			continue
		}
		labels := section
		if len(cells) > 4 {
			labels = cells[3]
		}
		prev := ""
		for _, m := range nameRE.FindAllStringSubmatch(cells[1], -1) {
			name := m[1]
			if rest, ok := strings.CutPrefix(name, "..._"); ok {
				// `..._write_bytes_total` after `..._read_bytes_total`:
				// replace as many trailing words of the previous name.
				words, prevWords := strings.Split(rest, "_"), strings.Split(prev, "_")
				name = strings.Join(append(prevWords[:len(prevWords)-len(words)], words...), "_")
			}
			labelsOf[name] = labels
			prev = name
		}
	}
	if len(labelsOf) < 25 || labelsOf["libvirt_domain_interface_stats_transmit_packets_total"] == "" {
		t.Fatalf("read only %d metrics from docs/metrics.md: has its table format changed?", len(labelsOf))
	}
	// Labels a table row carries that the live metric does not, on
	// purpose (docs/runs.md says why).
	extra := map[string]bool{
		"forgelab_link_up from":   true, // per direction in links.csv
		"forgelab_host_up domain": true,
	}
	tables := map[string][]string{
		PositionsFile: positionSchema.header(),
		LinksFile:     linkSchema.header(),
		HostsFile:     hostSchema.header(),
		ProcessesFile: processSchema.header(),
	}
	for file, header := range tables {
		var labelCols []string
		for _, h := range header[2:] {
			if !isMetricColumn(h) {
				labelCols = append(labelCols, h)
				continue
			}
			sel, err := ParseSelector(h)
			if err != nil {
				t.Errorf("%s: column %q: %v", file, h, err)
				continue
			}
			doc, ok := labelsOf[sel.Name]
			if !ok {
				t.Errorf("%s: column %s is not a metric of docs/metrics.md", file, sel.Name)
				continue
			}
			labels := append([]string(nil), labelCols...)
			for k := range sel.Labels {
				labels = append(labels, k)
			}
			for _, l := range labels {
				if l == "kind" && sel.Name != "forgelab_host_up" && strings.HasPrefix(sel.Name, "libvirt_") {
					continue // hosts.csv's kind column belongs to forgelab_host_up
				}
				words := strings.FieldsFunc(doc, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r == '_') })
				if !slices.Contains(words, l) && !extra[sel.Name+" "+l] {
					t.Errorf("%s: %s has label %q; docs/metrics.md gives it %q", file, sel.Name, l, strings.TrimSpace(doc))
				}
			}
		}
	}
	for _, m := range []string{MetricWorkloadValue, MetricScenarioEvents} {
		if _, ok := labelsOf[m]; !ok {
			t.Errorf("%s is not in docs/metrics.md", m)
		}
	}
}

func TestLinkSamples(t *testing.T) {
	q := netfabric.Impairment{RateBits: 1_000_000, Delay: 30 * time.Millisecond, Jitter: time.Millisecond, Loss: 5}
	tests := []struct {
		name string
		link netfabric.LinkState
		want []LinkSample
	}{
		{"shaped, counted", netfabric.LinkState{Name: "ab", Up: true, Directions: []netfabric.Direction{
			{From: "a", Quality: q, Counters: &netfabric.Counters{RxPackets: 10, TxPackets: 9, DropLoss: 1, Queued: 2}}}},
			[]LinkSample{{Link: "ab", From: "a", Up: 1, RateBytesPerSecond: 1e6 / 8, DelaySeconds: 0.03, JitterSeconds: 0.001, LossRatio: 0.05,
				RxPackets: 10, TxPackets: 9, DroppedLoss: 1, QueuedPackets: 2}}},
		{"direction down", netfabric.LinkState{Name: "ab", Up: true, Directions: []netfabric.Direction{
			{From: "b", Quality: netfabric.Impairment{Down: true}, Counters: &netfabric.Counters{DropDown: 4}}}},
			[]LinkSample{{Link: "ab", From: "b", Up: 0, DroppedDown: 4}}},
		{"link down", netfabric.LinkState{Name: "ab", Up: false, Directions: []netfabric.Direction{
			{From: "a", Counters: &netfabric.Counters{}}}},
			[]LinkSample{{Link: "ab", From: "a", Up: 0}}},
		{"bursty loss", netfabric.LinkState{Name: "ab", Up: true, Directions: []netfabric.Direction{
			{From: "a", Quality: netfabric.Impairment{GE: netfabric.GilbertElliott{P: 1, R: 9, OneMinusH: 50, OneMinusK: 0}}, Counters: &netfabric.Counters{}}}},
			[]LinkSample{{Link: "ab", From: "a", Up: 1, LossRatio: 0.05}}},
		{"not counted", netfabric.LinkState{Name: "ab", Up: true, Directions: []netfabric.Direction{{From: "a"}}},
			[]LinkSample{{Link: "ab", From: "a", Up: 1, RxPackets: math.NaN(), RxBytes: math.NaN(), TxPackets: math.NaN(), TxBytes: math.NaN(),
				DroppedLoss: math.NaN(), DroppedQueue: math.NaN(), DroppedDown: math.NaN(), DroppedPartition: math.NaN(),
				DroppedError: math.NaN(), DroppedOverrun: math.NaN(), DroppedPeerDown: math.NaN(), QueuedPackets: math.NaN()}}},
	}
	for _, tt := range tests {
		got := LinkSamples(netfabric.State{Links: []netfabric.LinkState{tt.link}})
		if d := diff(got, tt.want); d != "" {
			t.Errorf("%s: %s", tt.name, d)
		}
	}
}

func TestParseSelector(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "forgelab_link_up", want: "forgelab_link_up"},
		{in: " forgelab_link_up { link = ab , from=a } ", want: `forgelab_link_up{from="a",link="ab"}`},
		{in: `m{a="x,y",b=z}`, want: `m{a="x,y",b="z"}`},
		{in: `m{a="say \"hi\""}`, want: `m{a="say \"hi\""}`},
		{in: `m{a=}`, want: `m{a=""}`},
		{in: `m{a=1,}`, want: `m{a="1"}`},
		{in: `m{a=1,a=2}`, err: "given twice"},
		{in: `m{a="x}`, err: "unterminated quoted value of a"},
		{in: `m{a="x"y}`, err: "expected ','"},
		{in: `m{a="x}"`, err: "missing '}'"},
		{in: `m{1a=x}`, err: "is not label=value"},
		{in: `9m`, err: "no metric name"},
		{in: ``, err: "no metric name"},
	}
	for _, tt := range tests {
		s, err := ParseSelector(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSelector(%q): %v, want an error containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || s.String() != tt.want {
			t.Errorf("ParseSelector(%q) = %s, %v; want %s", tt.in, s, err, tt.want)
		}
	}
}

func TestWorkloadRecord(t *testing.T) {
	tests := []struct{ line, want string }{
		{`{"a":1}`, `{"time":"2026-12-01T23:45:12.123456789Z","t":1.5,"a":1}`},
		{`  { "b" : [1, 2], "a" : {"c": null} }  `, `{"time":"2026-12-01T23:45:12.123456789Z","t":1.5,"b":[1,2],"a":{"c":null}}`},
		{`{"t":"x","time":2}`, `{"time":"2026-12-01T23:45:12.123456789Z","t":1.5,"workload_t":"x","workload_time":2}`},
		{`{}`, `{"time":"2026-12-01T23:45:12.123456789Z","t":1.5}`},
		{`[1,2]`, ""},
		{`{"a":`, ""},
		{`hello {"a":1}`, ""},
		{``, ""},
		{`{"a":1} {"b":2}`, ""},
	}
	for _, tt := range tests {
		got, ok := workloadRecord(t0, 1.5, []byte(tt.line))
		if string(got) != tt.want || ok != (tt.want != "") {
			t.Errorf("workloadRecord(%q) = %s, %v; want %s", tt.line, got, ok, tt.want)
		}
	}
}

func TestFingerprintDifferences(t *testing.T) {
	a := Fingerprint{Kernel: "6.1", CPUModel: "EPYC", Cores: 2, Accel: "tcg", Commit: "abc", Seed: 1, LabSHA256: "x",
		Images: []Image{{Name: "debian-12", Digest: "sha256:1"}}}
	tests := []struct {
		name   string
		change func(*Fingerprint)
		want   string
	}{
		{"same", func(*Fingerprint) {}, ""},
		{"seed and lab are the point of a comparison", func(f *Fingerprint) { f.Seed, f.LabSHA256 = 2, "y" }, ""},
		{"kernel", func(f *Fingerprint) { f.Kernel = "6.5" }, "kernel: 6.1 vs 6.5"},
		{"accel", func(f *Fingerprint) { f.Accel = "kvm" }, "accelerator: tcg vs kvm"},
		{"image", func(f *Fingerprint) { f.Images = []Image{{Name: "debian-12", Digest: "sha256:2"}} }, "images: debian-12@sha256:1 vs debian-12@sha256:2"},
		{"unknown", func(f *Fingerprint) { f.Commit = "" }, "forgelab commit: abc vs unknown"},
	}
	for _, tt := range tests {
		b := a
		tt.change(&b)
		if got := strings.Join(a.Differences(b), "; "); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

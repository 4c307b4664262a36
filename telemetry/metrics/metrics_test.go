package metrics_test

import (
	"bytes"
	"context"

	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend/backendtest"
	"github.com/forgelab/forgelab/telemetry/metrics"
)

// scrape serves the collector over a fake through promhttp, as serve does,
// and returns the exposition text.
func scrape(t *testing.T, f *backendtest.Fake) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.New(f, 5*time.Second, nil))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s: %s", resp.Status, body)
	}
	return string(body)
}

func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, text)
	}
	return fams
}

// value finds the sample of name with exactly these labels (lab included).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range fam.Metric {
		got := map[string]string{}
		for _, lp := range m.Label {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

func TestScrapeValues(t *testing.T) {
	f := backendtest.New()
	q := netfabric.Impairment{RateBits: 10_000_000, Delay: 30 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 20}
	if err := f.SetQuality("demo", "ab", "a", q); err != nil {
		t.Fatal(err)
	}
	if err := f.SetLinkUp(context.Background(), "cli", "demo", "cd", false); err != nil {
		t.Fatal(err)
	}
	fams := parse(t, scrape(t, f))
	ab := map[string]string{"lab": "demo", "link": "ab", "from": "a"}
	cases := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"forgelab_link_rate_bytes_per_second", ab, 10e6 / 8},
		{"forgelab_link_delay_seconds", ab, 0.030},
		{"forgelab_link_jitter_seconds", ab, 0.002},
		{"forgelab_link_loss_ratio", ab, 0.20},
		{"forgelab_link_loss_ratio", map[string]string{"lab": "demo", "link": "ab", "from": "b"}, 0},
		{"forgelab_link_up", map[string]string{"lab": "demo", "link": "ab"}, 1},
		{"forgelab_link_up", map[string]string{"lab": "demo", "link": "cd"}, 0},
		{"forgelab_link_rx_packets_total", ab, 100},
		{"forgelab_link_dropped_packets_total", map[string]string{"lab": "demo", "link": "ab", "from": "a", "cause": "loss"}, 20},
		{"forgelab_host_position_meters", map[string]string{"lab": "demo", "host": "c", "axis": "y"}, 50},
		{"forgelab_host_up", map[string]string{"lab": "demo", "host": "d", "kind": "physical"}, 1},
		{"libvirt_domain_info_memory_usage_bytes", map[string]string{"lab": "demo", "host": "a", "domain": "fl-ab12-a"}, 512 << 20},
		{"libvirt_domain_block_stats_read_bytes_total", map[string]string{"lab": "demo", "host": "a", "domain": "fl-ab12-a", "target_device": "vda"}, 1 << 20},
		{"forgelab_workload_value", map[string]string{"lab": "demo", "host": "a", "workload": "alice", "field": "bits_per_second"}, 1e6},
		{"forgelab_scenario_events_total", map[string]string{"lab": "demo", "action": "link.set"}, 1},
	}
	for _, c := range cases {
		got, ok := value(t, fams, c.name, c.labels)
		if !ok {
			t.Errorf("%s%v: missing", c.name, c.labels)
			continue
		}
		if d := got - c.want; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Counters are counters, gauges gauges: the _total suffix tells.
	for name, fam := range fams {
		want := dto.MetricType_GAUGE
		if strings.HasSuffix(name, "_total") {
			want = dto.MetricType_COUNTER
		}
		if fam.GetType() != want {
			t.Errorf("%s is a %v, want %v", name, fam.GetType(), want)
		}
	}
}

// TestLabsComeAndGo: a destroyed lab disappears from the next scrape and
// the others stay.
func TestLabsComeAndGo(t *testing.T) {
	f := backendtest.New()
	f.AddLab(backendtest.DemoTopology("second"))
	fams := parse(t, scrape(t, f))
	if _, ok := value(t, fams, "forgelab_link_up", map[string]string{"lab": "second", "link": "ab"}); !ok {
		t.Fatal("lab second missing")
	}
	f.RemoveLab("second")
	fams = parse(t, scrape(t, f))
	if _, ok := value(t, fams, "forgelab_link_up", map[string]string{"lab": "second", "link": "ab"}); ok {
		t.Error("lab second still scraped after it went")
	}
	if _, ok := value(t, fams, "forgelab_link_up", map[string]string{"lab": "demo", "link": "ab"}); !ok {
		t.Error("lab demo missing")
	}
}

// TestPromtool: Prometheus' own linter accepts the exposition.
func TestPromtool(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing: .ci/setup installs Debian's prometheus package, which has it")
		}
		t.Skip("promtool is missing: apt-get install prometheus")
	}
	text := scrape(t, backendtest.New())
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	// Exit 3 is lint findings, 1 text it cannot parse: both fail.
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// docFamily is one metric of docs/metrics.md and its labels.
type docFamily struct {
	name, typ string
	labels    []string
}

var backticked = regexp.MustCompile("`([a-z_.]+)`")

// readDoc reads the tables of docs/metrics.md: the names in the first
// column (with "..._x" meaning the name above with its last words
// replaced), the type, and the labels (the words before any brackets).
func readDoc(t *testing.T) []docFamily {
	t.Helper()
	data, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []docFamily
	vmLabels := []string{"host", "domain"}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		typ := strings.TrimSpace(cols[1])
		var labels []string
		if len(cols) > 2 {
			for _, l := range strings.Split(regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(cols[2], ""), ",") {
				if l = strings.TrimSpace(l); l != "" {
					labels = append(labels, l)
				}
			}
		}
		prev := ""
		for _, m := range backticked.FindAllStringSubmatch(cols[0], -1) {
			name := m[1]
			if rest, ok := strings.CutPrefix(name, "..._"); ok {
				words := strings.Split(prev, "_")
				name = strings.Join(words[:len(words)-len(strings.Split(rest, "_"))], "_") + "_" + rest
			}
			prev = name
			ls := labels
			if strings.HasPrefix(name, "libvirt_") {
				// "Labels: host, domain, and target_device where a device is meant."
				ls = vmLabels
				if strings.Contains(name, "_block_") || strings.Contains(name, "_interface_") {
					ls = append(slices.Clone(vmLabels), "target_device")
				}
			}
			out = append(out, docFamily{name: name, typ: typ, labels: append([]string{"lab"}, ls...)})
		}
	}
	if len(out) < 20 {
		t.Fatalf("read only %d metrics from docs/metrics.md: has its table format changed?", len(out))
	}
	return out
}

// TestNamesMatchDoc: the exporter emits exactly the families of
// docs/metrics.md, with their types and labels, and nothing else.
func TestNamesMatchDoc(t *testing.T) {
	fams := parse(t, scrape(t, backendtest.New()))
	doc := readDoc(t)
	documented := map[string]bool{}
	for _, d := range doc {
		documented[d.name] = true
		fam, ok := fams[d.name]
		if !ok {
			t.Errorf("%s is in docs/metrics.md but not in a scrape", d.name)
			continue
		}
		if got := strings.ToLower(fam.GetType().String()); got != d.typ {
			t.Errorf("%s: type %s, docs say %s", d.name, got, d.typ)
		}
		for _, m := range fam.Metric {
			var got []string
			for _, lp := range m.Label {
				got = append(got, lp.GetName())
			}
			sort.Strings(got)
			want := slices.Sorted(slices.Values(d.labels))
			if !slices.Equal(got, want) {
				t.Errorf("%s: labels %v, docs say %v", d.name, got, want)
				break
			}
		}
	}
	for name := range fams {
		if !documented[name] {
			t.Errorf("%s is scraped but not in docs/metrics.md", name)
		}
	}
}

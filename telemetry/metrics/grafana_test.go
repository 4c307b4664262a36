package metrics_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/forgelab/forgelab/telemetry/backend/backendtest"
)

// metricName finds metric names in PromQL: forgelab's and libvirt's, the
// only families the exporter has.
var metricName = regexp.MustCompile(`\b(?:forgelab|libvirt)_[a-zA-Z0-9_]+\b`)

// TestDashboardMetricsExist: every metric a query of the Grafana dashboard
// uses is in a scrape of the exporter, and every query uses one.
func TestDashboardMetricsExist(t *testing.T) {
	data, err := os.ReadFile("../../docs/grafana/forgelab.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("docs/grafana/forgelab.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("a provisioned dashboard needs a uid and a title")
	}
	fams := parse(t, scrape(t, backendtest.New()))
	queries := map[string]string{} // expr -> where
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries[tg.Expr] = "panel " + p.Title
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			queries[v.Definition] = "variable"
		}
	}
	for _, a := range dash.Annotations.List {
		queries[a.Expr] = "annotation"
	}
	used := map[string]bool{}
	for expr, where := range queries {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: query %q uses no forgelab or libvirt metric", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if _, ok := fams[n]; !ok {
				t.Errorf("%s: query %q uses %s, which the exporter does not have", where, expr, n)
			}
		}
	}
	// The dashboard shows every family the exporter has.
	for name := range fams {
		if !used[name] {
			t.Errorf("the dashboard shows nothing of %s", name)
		}
	}
}

// TestPrometheusConfig: the example scrape configuration is one Prometheus
// accepts.
func TestPrometheusConfig(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing: .ci/setup installs Debian's prometheus package, which has it")
		}
		t.Skip("promtool is missing: apt-get install prometheus")
	}
	var out bytes.Buffer
	cmd := exec.Command(path, "check", "config", "--syntax-only", "../../docs/grafana/prometheus.yml")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out.String())
	}
}

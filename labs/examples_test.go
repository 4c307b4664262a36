package labs

import (
	"os"
	"strings"
	"testing"

	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/labs/scenario"
	"github.com/forgelab/forgelab/labs/spec"
)

// The handover demo's two lab files parse and plan, the scenario fits
// both, and the files differ only where the variants do (so the movement
// compared is the same).
func TestExampleHandoverVariants(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile("../examples/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	scen := read("handover.toml")
	for _, v := range []struct{ file, routing string }{{"handover-babeld.toml", "none"}, {"handover-static.toml", "static"}} {
		t.Run(v.file, func(t *testing.T) {
			s, err := spec.Parse(v.file, []byte(read(v.file)))
			if err != nil {
				t.Fatal(err)
			}
			if s.Lab.Routing != v.routing {
				t.Errorf("routing %q, want %q", s.Lab.Routing, v.routing)
			}
			p, err := plan.NewPlan(s)
			if err != nil {
				t.Fatal(err)
			}
			scripts, unreachable, err := RouteScripts(p)
			if err != nil || len(unreachable) > 0 {
				t.Fatal(err, unreachable)
			}
			if v.routing == "static" && !strings.Contains(scripts["a"], p.Host("b").Node4.String()+"/32 via") {
				t.Errorf("a has no static route to b's node address:\n%s", scripts["a"])
			}
			for _, w := range s.Workloads {
				if w.Start != spec.StartRun {
					t.Errorf("workload %s starts with %s, want run", w.Name, w.Start)
				}
			}
			if _, err := scenario.Parse("handover.toml", []byte(scen), spec.ScenarioLab(s)); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Every line but the variant's own is the same in both files.
	differs := func(line string) bool {
		for _, p := range []string{"#", "name = \"handover-", "routing = ", "[[service]]", "name = \"babeld\"", "command = \"babeld "} {
			if strings.HasPrefix(line, p) {
				return true
			}
		}
		return strings.TrimSpace(line) == ""
	}
	keep := func(text string) []string {
		var out []string
		for _, l := range strings.Split(text, "\n") {
			if !differs(l) {
				out = append(out, l)
			}
		}
		return out
	}
	a, b := keep(read("handover-babeld.toml")), keep(read("handover-static.toml"))
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("the two variants differ beyond name, routing and babeld:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}

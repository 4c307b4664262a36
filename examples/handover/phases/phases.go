// Package phases reads a handover run back (telemetry/runs) and says what
// happened to Alice's conversation in each phase of examples/handover.toml:
// before (0-20 s), during (20-30 s: ab degrades), after (30-60 s: ab out of
// range), the last 15 s, and when her route to Bob left the direct link.
// `make demo` prints it for both variants side by side; the VM test
// asserts on it.
package phases

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/forgelab/forgelab/telemetry/runs"
)

// Phase is a window of the run, in seconds from its start.
type Phase struct {
	Name     string
	From, To float64
}

// Phases of the handover scenario.
var Phases = []Phase{{"before", 0, 20}, {"during", 20, 30}, {"after", 30, 60}, {"last 15 s", 45, 60}}

// Summary is one run.
type Summary struct {
	Run     string
	Variant string
	Status  string
	// Delivery is the fraction of Alice's packets echoed back, per phase
	// (NaN: no packet sent in it).
	Delivery map[string]float64
	// FirstDev is Alice's route to Bob at the start; Direct is a's
	// device on ab (from the run's plan). Moved is when, from the start of
	// the handover (20 s) on, her route first left ab (-1: never), and
	// MovedTo the device and next hop then (c's link, for a network that
	// reroutes). Before 20 s a routing daemon may still pick either path.
	FirstDev string
	Direct   string
	Moved    float64
	MovedTo  string
	Lines    int
}

// Read summarises the run in dir.
func Read(dir string) (Summary, error) {
	r, err := runs.Open(dir)
	if err != nil {
		return Summary{}, err
	}
	recs, err := r.Workload("a", "alice")
	if err != nil {
		return Summary{}, err
	}
	s := Summary{Run: r.Name(), Variant: r.Meta.Variant, Status: string(r.Meta.Status), Delivery: map[string]float64{}, Moved: -1, Lines: len(recs)}
	s.Direct = deviceOn(dir, "a", "ab")
	delivered, lost := map[string]float64{}, map[string]float64{}
	for _, rec := range recs {
		for _, p := range Phases {
			if rec.T > p.From && rec.T <= p.To {
				delivered[p.Name] += number(rec.Fields["delivered"])
				lost[p.Name] += number(rec.Fields["lost"])
			}
		}
		dev, _ := rec.Fields["dev"].(string)
		via, _ := rec.Fields["via"].(string)
		if s.FirstDev == "" && dev != "" {
			s.FirstDev = dev
		}
		if s.Moved < 0 && rec.T > Phases[1].From && dev != "" && dev != s.Direct {
			s.Moved, s.MovedTo = rec.T, strings.TrimSpace(orDash(dev)+" via "+orDash(via))
		}
	}
	for _, p := range Phases {
		s.Delivery[p.Name] = math.NaN()
		if n := delivered[p.Name] + lost[p.Name]; n > 0 {
			s.Delivery[p.Name] = delivered[p.Name] / n
		}
	}
	return s, nil
}

// deviceOn is host's interface on link, from the run's plan.json.
func deviceOn(dir, host, link string) string {
	data, err := os.ReadFile(filepath.Join(dir, runs.PlanFile))
	if err != nil {
		return ""
	}
	var p struct {
		Hosts []struct {
			Name string
			NICs []struct{ Link, Name string }
		}
	}
	if json.Unmarshal(data, &p) != nil {
		return ""
	}
	for _, h := range p.Hosts {
		for _, n := range h.NICs {
			if h.Name == host && n.Link == link {
				return n.Name
			}
		}
	}
	return ""
}

func number(v any) float64 {
	if n, ok := v.(json.Number); ok {
		f, _ := n.Float64()
		return f
	}
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Print writes the summaries side by side.
func Print(w io.Writer, ss []Summary) {
	row := func(label string, cell func(Summary) string) {
		fmt.Fprintf(w, "%-28s", label)
		for _, s := range ss {
			fmt.Fprintf(w, " %-36s", cell(s))
		}
		fmt.Fprintln(w)
	}
	row("", func(s Summary) string { return s.Variant })
	row("run", func(s Summary) string { return s.Run })
	row("status", func(s Summary) string { return s.Status })
	for _, p := range Phases {
		row(fmt.Sprintf("delivery %s (%g-%g s)", p.Name, p.From, p.To), func(s Summary) string {
			d := s.Delivery[p.Name]
			if math.IsNaN(d) {
				return "-"
			}
			return fmt.Sprintf("%.0f %%", 100*d)
		})
	}
	row("route at start", func(s Summary) string {
		if s.FirstDev != "" && s.FirstDev == s.Direct {
			return s.FirstDev + " (ab, direct)"
		}
		return orDash(s.FirstDev)
	})
	row("route left ab (from 20 s)", func(s Summary) string {
		if s.Moved < 0 {
			return "never"
		}
		return fmt.Sprintf("at %.0f s to %s", s.Moved, s.MovedTo)
	})
}

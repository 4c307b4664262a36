package compare

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/forgelab/forgelab/telemetry/anomaly"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// Options choose what compare looks at. The zero value gives the defaults
// that suit the handover demo and most labs.
type Options struct {
	// Baseline names the run the others are measured against, as the CLI
	// names runs (LAB/ID, ID or a unique start of one, or the run's
	// folder); "" is the first.
	// A baseline not among the runs is added in front.
	Baseline string `json:"baseline,omitempty"`
	// Link is the link whose loss groups the samples; "" picks the link
	// whose loss changed most during the runs.
	Link string `json:"link,omitempty"`
	// Edges are the loss buckets' edges in percent, increasing; nil is
	// DefaultEdges. A link that is down counts as 100 %.
	Edges []float64 `json:"edges,omitempty"`
	// Metrics limits the report to these metrics, each "WORKLOAD.FIELD",
	// "FIELD" (in any workload) or a link metric "link.LINK.NAME", with
	// ":higher" or ":lower" to say which way is better; nil is every
	// metric, with statements for the headline ones (delivery, goodput,
	// latency).
	Metrics []string `json:"metrics,omitempty"`
	// AllowIncomplete compares runs that stopped early (with a warning)
	// instead of refusing them.
	AllowIncomplete bool `json:"allow_incomplete,omitempty"`
}

// DefaultEdges are the loss buckets: 0-1 %, 1-5 %, 5-10 %, 10-100 % or
// down.
var DefaultEdges = []float64{0, 1, 5, 10, 100}

// Load resolves the runs a user named under root (runs.Root of a state
// dir; or their folders, e.g. what forgelab run prints), checks that they can be compared, and compares them.
func Load(root string, refs []string, opt Options) (*Report, error) {
	if len(refs) < 2 && !(len(refs) == 1 && opt.Baseline != "") {
		return nil, fmt.Errorf("compare needs at least 2 runs, got %d: name them as LAB/ID or ID, e.g. forgelab compare RUN_A RUN_B (forgelab runs ls lists them)", len(refs))
	}
	var dirs []string
	for _, ref := range refs {
		dir, err := resolve(root, ref)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, dir)
	}
	base := 0
	if opt.Baseline != "" {
		dir, err := resolve(root, opt.Baseline)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		if base = slices.Index(dirs, dir); base < 0 {
			dirs, base = append([]string{dir}, dirs...), 0
		}
	}
	var rs []*runs.Run
	for _, dir := range dirs {
		r, err := runs.Open(dir)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return Compare(rs, base, opt)
}

// resolve finds a run as the CLI names it (runs.Resolve), or by its
// folder: a path that starts with / or . or has more than one /, such as
// what forgelab run prints (an exported run unpacked anywhere, too).
func resolve(root, ref string) (string, error) {
	if strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, ".") || strings.Count(ref, "/") > 1 {
		dir := filepath.Clean(ref)
		if _, err := os.Stat(filepath.Join(dir, runs.MetaFile)); err != nil {
			return "", fmt.Errorf("run folder %s: %w (no %s there; forgelab runs ls lists the runs)", ref, runs.ErrNoRun, runs.MetaFile)
		}
		return filepath.Abs(dir)
	}
	return runs.Resolve(root, ref)
}

// Compare compares opened runs, rs[base] being the baseline.
func Compare(rs []*runs.Run, base int, opt Options) (*Report, error) {
	if len(rs) < 2 {
		return nil, fmt.Errorf("compare needs at least 2 runs, got %d: name another run (forgelab runs ls lists them)", len(rs))
	}
	if base < 0 || base >= len(rs) {
		return nil, fmt.Errorf("baseline %d is not one of the %d runs", base, len(rs))
	}
	rep := &Report{Baseline: base, Options: opt}
	seen := map[string]bool{}
	for _, r := range rs {
		if seen[r.Dir] {
			return nil, fmt.Errorf("run %s is named twice: name each run once", r.Name())
		}
		seen[r.Dir] = true
	}
	if err := checkStatus(rs, opt, rep); err != nil {
		return nil, err
	}
	if err := checkComparable(rs, base, rep); err != nil {
		return nil, err
	}
	labels := runLabels(rs)
	for i, r := range rs {
		rep.Runs = append(rep.Runs, RunInfo{Name: r.Name(), Dir: r.Dir, Lab: r.Meta.Lab, ID: r.Meta.ID,
			Scenario: r.Meta.Scenario, Variant: r.Meta.Variant, Label: labels[i], Status: string(r.Meta.Status),
			Reason: r.Meta.Reason, Start: r.Meta.Start, Fingerprint: r.Meta.Fingerprint})
	}
	if err := analyse(rs, opt, rep); err != nil {
		return nil, err
	}
	for i, r := range rs {
		fs, err := anomaly.Find(r, anomaly.DefaultOptions())
		if err != nil {
			return nil, fmt.Errorf("anomalies of run %s: %w", r.Name(), err)
		}
		if len(fs) > 0 {
			rep.Anomalies = append(rep.Anomalies, RunAnomalies{Run: labels[i], Findings: fs})
		}
	}
	return rep, nil
}

// checkStatus refuses runs that are still recording, and incomplete or
// failed ones unless allowed.
func checkStatus(rs []*runs.Run, opt Options, rep *Report) error {
	var bad []string
	for _, r := range rs {
		switch r.Meta.Status {
		case runs.StatusComplete:
		case runs.StatusRunning:
			return fmt.Errorf("run %s is still recording: wait for it to end (or stop it with Ctrl-C in its terminal), then compare", r.Name())
		default:
			why := string(r.Meta.Status)
			if r.Meta.Reason != "" {
				why += ": " + r.Meta.Reason
			}
			if opt.AllowIncomplete {
				rep.warn("run %s is %s; its figures cover only what it recorded", r.Name(), why)
				continue
			}
			bad = append(bad, fmt.Sprintf("%s (%s)", r.Name(), why))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("run %s did not play to its end, so its figures cover only part of the scenario: record it again, or pass --allow-incomplete to compare it anyway", strings.Join(bad, ", "))
	}
	return nil
}

// topology is what plan.json says about the hosts and links, the part
// that must match for runs to be comparable.
type topology struct {
	Hosts []struct {
		Name string
		Kind string
	}
	Links []struct {
		Name      string
		Endpoints []string
	}
}

func readTopology(r *runs.Run) (*topology, error) {
	data, err := os.ReadFile(filepath.Join(r.Dir, runs.PlanFile))
	if err != nil {
		return nil, err
	}
	var t topology
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("%s of run %s: %w", runs.PlanFile, r.Name(), err)
	}
	return &t, nil
}

func (t *topology) hosts() []string {
	var out []string
	for _, h := range t.Hosts {
		s := h.Name
		if h.Kind != "" && h.Kind != "vm" {
			s += " (" + h.Kind + ")"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func (t *topology) links() []string {
	var out []string
	for _, l := range t.Links {
		out = append(out, l.Name+" "+strings.Join(l.Endpoints, "-"))
	}
	slices.Sort(out)
	return out
}

// checkComparable refuses runs of another scenario or on other hosts or
// links than the baseline, naming every difference; variants of one lab
// file (other software, same topology) pass. Another scenario file under
// the same name is a warning.
func checkComparable(rs []*runs.Run, base int, rep *Report) error {
	b := rs[base]
	bt, berr := readTopology(b)
	bscen, _ := os.ReadFile(filepath.Join(b.Dir, runs.ScenarioFile))
	var problems []string
	for i, r := range rs {
		if i == base {
			continue
		}
		var diffs []string
		if r.Meta.Scenario != b.Meta.Scenario {
			diffs = append(diffs, fmt.Sprintf("scenario %q, not %q", orNone(r.Meta.Scenario), orNone(b.Meta.Scenario)))
		} else if scen, _ := os.ReadFile(filepath.Join(r.Dir, runs.ScenarioFile)); !bytes.Equal(scen, bscen) {
			rep.warn("runs %s and %s played different files of scenario %q: check that they did the same", b.Name(), r.Name(), b.Meta.Scenario)
		}
		rt, rerr := readTopology(r)
		switch {
		case berr != nil || rerr != nil:
			rep.warn("runs %s and %s: hosts and links not checked (no readable %s)", b.Name(), r.Name(), runs.PlanFile)
		default:
			if d := setDiff(bt.hosts(), rt.hosts()); d != "" {
				diffs = append(diffs, "hosts "+d)
			}
			if d := setDiff(bt.links(), rt.links()); d != "" {
				diffs = append(diffs, "links "+d)
			}
		}
		if len(diffs) > 0 {
			problems = append(problems, fmt.Sprintf("%s differs from the baseline %s: %s", r.Name(), b.Name(), strings.Join(diffs, "; ")))
		}
		if d := b.Meta.Fingerprint.Differences(r.Meta.Fingerprint); len(d) > 0 {
			rep.warn("environments differ between %s and %s, so part of a difference may be the machine's: %s", b.Name(), r.Name(), strings.Join(d, "; "))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("runs are not comparable: %s. Compare runs of one scenario on the same hosts and links (variants of a lab file with other software, like handover-babeld and handover-static, are fine)", strings.Join(problems, "; "))
	}
	return nil
}

// setDiff says what b has that a lacks and the other way round, or "".
func setDiff(a, b []string) string {
	var only []string
	var missing []string
	for _, x := range b {
		if !slices.Contains(a, x) {
			only = append(only, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			missing = append(missing, x)
		}
	}
	var parts []string
	if len(only) > 0 {
		parts = append(parts, "has "+strings.Join(only, ", "))
	}
	if len(missing) > 0 {
		parts = append(parts, "lacks "+strings.Join(missing, ", "))
	}
	return strings.Join(parts, " and ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// runLabels names each run for tables and plots: its variant, else its
// lab; runs that would share a name get their id's suffix.
func runLabels(rs []*runs.Run) []string {
	out := make([]string, len(rs))
	count := map[string]int{}
	for i, r := range rs {
		out[i] = r.Meta.Variant
		if out[i] == "" {
			out[i] = r.Meta.Lab
		}
		count[out[i]]++
	}
	for i, r := range rs {
		if count[out[i]] > 1 {
			id := r.Meta.ID
			if j := strings.LastIndexByte(id, '-'); j >= 0 {
				id = id[j+1:]
			}
			out[i] += "-" + id
		}
	}
	return out
}

// ParseEdges reads bucket edges as the --edges flag gives them:
// "0,1,5,10,100" (percent). "" is nil, the default.
func ParseEdges(s string) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f), "%")), 64)
		if err != nil {
			return nil, fmt.Errorf("--edges %q: %q is not a number: give percentages separated by commas, e.g. 0,1,5,10,100", s, f)
		}
		out = append(out, v)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("--edges %q: need at least 2 edges, e.g. 0,1,5,10,100", s)
	}
	for i := 1; i < len(out); i++ {
		if out[i] <= out[i-1] {
			return nil, fmt.Errorf("--edges %q: edges must increase (%g follows %g): e.g. 0,1,5,10,100", s, out[i], out[i-1])
		}
	}
	return out, nil
}

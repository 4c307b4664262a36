package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/forgelab/forgelab/telemetry/runs"
)

// Baseline is a named set of samples a later bench is judged against.
type Baseline struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Lab     string    `json:"lab"`
	File    string    `json:"file,omitempty"` // the lab file the bench was read from
	Bench   string    `json:"bench,omitempty"`
	Samples Samples   `json:"samples"`
}

// Runs lists the runs the baseline's values come from, in order.
func (b *Baseline) Runs() []string {
	var out []string
	for _, s := range b.Samples {
		for _, r := range s.Runs {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// ErrNoBaseline is wrapped by the error for a baseline that does not
// exist.
var ErrNoBaseline = errors.New("no such baseline")

// Store keeps baselines by name, one JSON file each, under
// STATE/bench/baselines, and the samples of the last bench in
// STATE/bench/last.json (for `baseline set NAME --from-last`).
type Store struct{ Dir string }

// NewStore returns the store of a state dir.
func NewStore(stateDir string) Store { return Store{Dir: filepath.Join(stateDir, "bench")} }

func (s Store) path(name string) string { return filepath.Join(s.Dir, "baselines", name+".json") }

func checkBaselineName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("baseline name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 64", name)
	}
	return nil
}

// Get reads a baseline; one that does not exist is an error listing those
// that do.
func (s Store) Get(name string) (*Baseline, error) {
	if err := checkBaselineName(name); err != nil {
		return nil, err
	}
	b, err := readBaseline(s.path(name))
	if errors.Is(err, os.ErrNotExist) {
		names, _ := s.Names()
		have := "there are none yet"
		if len(names) > 0 {
			have = "there are: " + strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("baseline %q: %w (%s); make it with `forgelab bench baseline set %s --from-last` after a bench, or from runs: `forgelab bench baseline set %s RUN...`",
			name, ErrNoBaseline, have, name, name)
	}
	return b, err
}

// Set writes a baseline, replacing one of the same name.
func (s Store) Set(b *Baseline) error {
	if err := checkBaselineName(b.Name); err != nil {
		return err
	}
	if len(b.Samples) == 0 {
		return errors.New("a baseline needs samples: none given")
	}
	return writeJSON(s.path(b.Name), b)
}

// Remove deletes a baseline.
func (s Store) Remove(name string) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	return os.Remove(s.path(name))
}

// Names lists the baselines, sorted.
func (s Store) Names() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.Dir, "baselines"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// List reads every baseline, sorted by name.
func (s Store) List() ([]*Baseline, error) {
	names, err := s.Names()
	if err != nil {
		return nil, err
	}
	var out []*Baseline
	for _, n := range names {
		b, err := s.Get(n)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// SaveLast keeps the samples of the bench that just ended.
func (s Store) SaveLast(b *Baseline) error {
	return writeJSON(filepath.Join(s.Dir, "last.json"), b)
}

// Last returns the samples of the last bench, named name.
func (s Store) Last(name string) (*Baseline, error) {
	b, err := readBaseline(filepath.Join(s.Dir, "last.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("no bench has ended yet under this state dir: run `forgelab bench FILE` first, or give the runs: `forgelab bench baseline set NAME RUN...`")
	}
	if err != nil {
		return nil, err
	}
	b.Name, b.Created = name, time.Now().UTC()
	return b, nil
}

// FromRuns makes a baseline from recorded bench runs (LAB/ID, an ID or
// its unique start, as `forgelab runs` takes them). Warm-up runs are
// refused: they are not measurements.
func FromRuns(runsRoot, name string, refs []string) (*Baseline, error) {
	if len(refs) == 0 {
		return nil, errors.New("no runs given: name bench runs (forgelab runs ls lists them), or use --from-last")
	}
	b := &Baseline{Name: name, Created: time.Now().UTC()}
	for _, ref := range refs {
		dir, err := runs.Resolve(runsRoot, ref)
		if err != nil {
			return nil, err
		}
		r, err := runs.Open(dir)
		if err != nil {
			return nil, err
		}
		if r.Meta.Bench != nil && r.Meta.Bench.Warmup {
			return nil, fmt.Errorf("run %s is a warm-up run: give measured runs only", r.Name())
		}
		if b.Lab == "" {
			b.Lab = r.Meta.Lab
		} else if b.Lab != r.Meta.Lab {
			return nil, fmt.Errorf("run %s is of lab %s, the others of lab %s: a baseline is of one lab", r.Name(), r.Meta.Lab, b.Lab)
		}
		vs, err := RunValues(r, nil)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			b.Samples.Add(v.Key, v.Better, v.Value, r.Name())
		}
	}
	return b, nil
}

func readBaseline(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w (remove it with forgelab bench baseline rm)", path, err)
	}
	return &b, nil
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

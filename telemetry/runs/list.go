package runs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Summary is one line of List.
type Summary struct {
	Lab      string    `json:"lab"`
	ID       string    `json:"id"`
	Dir      string    `json:"dir"`
	Scenario string    `json:"scenario,omitempty"`
	Variant  string    `json:"variant,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`
	Status   Status    `json:"status"`
	Reason   string    `json:"reason,omitempty"`
}

// Name is LAB/ID.
func (s Summary) Name() string { return s.Lab + "/" + s.ID }

// List returns the runs of lab (every lab's when lab is ""), newest
// first. A run whose recorder died without closing it is incomplete; a
// folder whose run.json cannot be read is listed as incomplete with the
// reason, so one damaged run does not hide the others.
func List(root, lab string) ([]Summary, error) {
	labs := []string{lab}
	if lab == "" {
		ents, err := os.ReadDir(root)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		labs = labs[:0]
		for _, e := range ents {
			if e.IsDir() && validName(e.Name()) {
				labs = append(labs, e.Name())
			}
		}
	} else if err := checkName("lab", lab); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []Summary
	for _, l := range labs {
		ents, err := os.ReadDir(filepath.Join(root, l))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		for _, e := range ents {
			if !e.IsDir() || !validName(e.Name()) {
				continue // import temporaries start with '.'
			}
			out = append(out, summarize(filepath.Join(root, l, e.Name()), l, e.Name()))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.After(out[j].Start)
		}
		return out[i].Name() > out[j].Name()
	})
	return out, nil
}

func summarize(dir, lab, id string) Summary {
	m, err := readMeta(dir)
	if err != nil {
		return Summary{Lab: lab, ID: id, Dir: dir, Status: StatusIncomplete, Reason: err.Error()}
	}
	return Summary{Lab: lab, ID: id, Dir: dir, Scenario: m.Scenario, Variant: m.Variant,
		Start: m.Start, End: m.End, Status: m.Status, Reason: m.Reason}
}

// Resolve finds a run folder under root from what a user typed: LAB/ID,
// an ID, or the start of an ID that only one run has.
func Resolve(root, ref string) (string, error) {
	if ref == "" {
		return "", errors.New("no run given: name one as LAB/ID or ID (forgelab runs ls lists them)")
	}
	if lab, id, ok := strings.Cut(ref, "/"); ok {
		if err := checkName("lab", lab); err != nil {
			return "", fmt.Errorf("run %q: %w; name a run as LAB/ID or ID (forgelab runs ls lists them)", ref, err)
		}
		if err := checkID(id); err != nil {
			return "", err
		}
		dir := filepath.Join(root, lab, id)
		if _, err := os.Stat(filepath.Join(dir, MetaFile)); err != nil {
			return "", fmt.Errorf("run %s: %w (forgelab runs ls %s lists that lab's runs)", ref, ErrNoRun, lab)
		}
		return dir, nil
	}
	if err := checkID(ref); err != nil {
		return "", err
	}
	all, err := List(root, "")
	if err != nil {
		return "", err
	}
	var found []Summary
	for _, s := range all {
		if s.ID == ref {
			found = append(found[:0], s)
			break
		}
		if strings.HasPrefix(s.ID, ref) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("run %s: %w under %s (forgelab runs ls lists the runs)", ref, ErrNoRun, root)
	case 1:
		return found[0].Dir, nil
	}
	names := make([]string, len(found))
	for i, s := range found {
		names[i] = s.Name()
	}
	return "", fmt.Errorf("run %s is ambiguous: %s; give LAB/ID", ref, strings.Join(names, ", "))
}

// Remove deletes a run folder. A run that is still recording is refused:
// stop it first.
func Remove(dir string) error {
	m, err := readMeta(dir)
	if err != nil && !errors.Is(err, ErrDamaged) {
		return fmt.Errorf("remove run: %w", err)
	}
	if m != nil && m.Status == StatusRunning {
		return fmt.Errorf("remove run %s/%s: it is still recording (pid %d): stop it first (Ctrl-C in its terminal)", m.Lab, m.ID, m.Recorder.PID)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove run: %w", err)
	}
	// The lab's folder goes with its last run; an error means it is not
	// empty, which is fine.
	_ = os.Remove(filepath.Dir(dir))
	return nil
}

// Show opens the run a user named (see Resolve).
func Show(root, ref string) (*Run, error) {
	dir, err := Resolve(root, ref)
	if err != nil {
		return nil, err
	}
	return Open(dir)
}

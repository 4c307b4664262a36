package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNamesAreCheckedBeforeTheyBecomePaths(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	for _, name := range []string{"", "..", "../etc", "a/b", "/abs", "Upper", "-x", strings.Repeat("a", 33)} {
		if _, err := s.Lab(name); err == nil {
			t.Errorf("Lab(%q) accepted", name)
		}
		if _, err := s.Load(name); err == nil || errors.Is(err, ErrNoLab) {
			t.Errorf("Load(%q): %v, want a name error", name, err)
		}
		if _, err := s.Lock(context.Background(), name, "test"); err == nil {
			t.Errorf("Lock(%q) accepted", name)
		}
		if err := s.AppendEvent(name, Event{Action: "x"}); err == nil {
			t.Errorf("AppendEvent(%q) accepted", name)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "etc")); err == nil {
		t.Error("a bad name made a path")
	}
	l, err := s.Lab("good-1")
	if err != nil || l.Dir != filepath.Join(s.Dir, "labs", "good-1") || l.State() != filepath.Join(l.Dir, "state.json") || l.Events() != filepath.Join(l.Dir, "events.jsonl") {
		t.Errorf("Lab(good-1) = %+v, %v", l, err)
	}
}

// The lock file stays while the lock is used and after: a removed lock
// file lets two processes hold "the" lock at once.
func TestLockFileIsNeverRemoved(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	ctx := context.Background()
	unlock, err := s.Lock(ctx, "lab", "create")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir, "labs", ".lab.lock")
	fi1, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	fi2, err := os.Stat(path)
	if err != nil || !os.SameFile(fi1, fi2) {
		t.Fatalf("lock file after unlock: %v", err)
	}
}

func TestLockWaitsForShortChangesOnly(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	ctx := context.Background()
	// A long operation holding the lock: the next caller is told at once.
	unlock, err := s.Lock(ctx, "lab", "create")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Lock(ctx, "lab", "destroy")
	if err == nil || !strings.Contains(err.Error(), "is running create on it") || time.Since(start) > time.Second {
		t.Fatalf("lock during create: %v after %s", err, time.Since(start))
	}
	unlock()
	// A short change holding it: the next caller waits for its end.
	unlock, err = s.Lock(ctx, "lab", "link.set")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		unlock()
	}()
	start = time.Now()
	unlock2, err := s.Lock(ctx, "lab", "destroy")
	if err != nil {
		t.Fatalf("lock after a short change: %v", err)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("got the lock after %s, while it was held for 100ms", d)
	}
	// And a caller that gives up does not keep the lock.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	unlock2()
	unlock3, _ := s.Lock(ctx, "lab", "heal")
	if _, err := s.Lock(cctx, "lab", "partition"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lock with a context that ends: %v", err)
	}
	unlock3()
	time.Sleep(20 * time.Millisecond) // the abandoned waiter takes and releases it
	unlock4, err := s.Lock(ctx, "lab", "create")
	if err != nil {
		t.Fatalf("lock after an abandoned wait: %v", err)
	}
	unlock4()
}

// One unreadable lab does not stop the list: it is listed as broken,
// with why.
func TestListShowsBrokenLabs(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	good := &State{Lab: "good", Phase: PhaseReady}
	os.MkdirAll(s.layout("good").Dir, 0o755)
	if err := s.Recorder(good).Update(func(*State) {}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(s.layout("damaged").Dir, 0o755)
	os.WriteFile(s.layout("damaged").State(), []byte("{not json"), 0o644)
	os.MkdirAll(s.layout("empty").Dir, 0o755)
	os.MkdirAll(filepath.Join(s.Dir, "labs", "Not A Lab"), 0o755)
	s.Lock(context.Background(), "good", "test") // leaves .good.lock beside them
	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Not A Lab": "not a lab name", "damaged": "damaged", "empty": "no state.json", "good": ""}
	if len(entries) != len(want) {
		t.Fatalf("List: %+v", entries)
	}
	for _, e := range entries {
		w, ok := want[e.Name]
		switch {
		case !ok:
			t.Errorf("unexpected entry %s", e.Name)
		case w == "" && (e.Err != nil || e.Phase() != PhaseReady):
			t.Errorf("%s: %v, %s", e.Name, e.Err, e.Phase())
		case w != "" && (e.Err == nil || !strings.Contains(e.Err.Error(), w) || e.Phase() != PhaseBroken):
			t.Errorf("%s: %v, want broken with %q", e.Name, e.Err, w)
		}
	}
	if names, err := s.Labs(); err != nil || len(names) != 1 || names[0] != "good" {
		t.Errorf("Labs: %v %v", names, err)
	}
}

func TestEventsAreJSONLines(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	os.MkdirAll(s.layout("lab").Dir, 0o755)
	in := []Event{
		{Source: "cli", Action: "link.set", Args: map[string]any{"link": "ab"}, Result: ResultOK},
		{Source: "api", Action: "heal", Result: ResultError, Error: "boom"},
	}
	for _, e := range in {
		if err := s.AppendEvent("lab", e); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(s.layout("lab").Events())
	if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], `{"time":`) {
		t.Fatalf("events.jsonl:\n%s", data)
	}
	out, err := s.Events("lab")
	if err != nil || len(out) != 2 || out[0].Args["link"] != "ab" || out[1].Error != "boom" || out[0].Time.IsZero() {
		t.Fatalf("Events: %+v %v", out, err)
	}
}

package runs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	root := t.TempDir()
	f := writeFixture(t, root)
	id := filepath.Base(f.dir)
	other, err := Create(root, Meta{Lab: "other", ID: id[:17] + "ffff"}) // same second, other lab
	if err != nil {
		t.Fatal(err)
	}
	other.Close(StatusComplete, "")
	tests := []struct {
		ref, want, err string
	}{
		{ref: "handover/" + id, want: f.dir},
		{ref: id, want: f.dir},
		{ref: id[:19], want: f.dir},
		{ref: "other/" + id[:17] + "ffff", want: other.Dir()},
		{ref: id[:17], err: "is ambiguous: "},
		{ref: "", err: "no run given"},
		{ref: "../x", err: `lab ".." cannot name a file in a run folder`},
		{ref: "..", err: `".." is not a run id: ids look like 20261201T234512Z-3f2a`},
		{ref: "handover/../../etc", err: `is not a run id`},
		{ref: "handover/.hidden", err: `is not a run id`},
		{ref: "20990101T000000Z-0000", err: "no such run under " + root + " (forgelab runs ls lists the runs)"},
		{ref: "handover/20990101T000000Z-0000", err: "no such run (forgelab runs ls handover lists that lab's runs)"},
	}
	for _, tt := range tests {
		got, err := Resolve(root, tt.ref)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Resolve(%q): %v, want an error containing %q", tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.ref, got, err, tt.want)
		}
	}
}

func TestRecorderRefuses(t *testing.T) {
	root := t.TempDir()
	r, err := Create(root, Meta{Lab: "lab1"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(StatusComplete, "")
	tests := []struct {
		name string
		do   func() error
		err  string
	}{
		{"lab escapes", func() error { _, err := Create(root, Meta{Lab: "../x"}); return err }, `lab "../x" cannot name a file`},
		{"id escapes", func() error { _, err := Create(root, Meta{Lab: "lab1", ID: "../../x"}); return err }, `is not a run id`},
		{"id reused", func() error { _, err := Create(root, Meta{Lab: "lab1", ID: r.ID()}); return err }, "exists: a run folder is never reused"},
		{"workload host", func() error { return r.WorkloadLine(time.Time{}, "a/b", "w", Stdout, []byte("x")) }, `host "a/b" cannot name a file`},
		{"workload name", func() error { return r.WorkloadLine(time.Time{}, "a", "..", Stdout, []byte("x")) }, `workload ".." cannot name a file`},
		{"workload stream", func() error { return r.WorkloadLine(time.Time{}, "a", "w", "stdin", []byte("x")) }, "want stdout or stderr"},
		{"two lines", func() error { return r.WorkloadLine(time.Time{}, "a", "w", Stdout, []byte("x\ny")) }, "one line at a time"},
		{"pcap escapes", func() error { return r.CopyPcap("../p", "/dev/null") }, `capture "../p" cannot name a file`},
		{"serial escapes", func() error { return r.CopySerial("", "/dev/null") }, `host "" cannot name a file`},
		{"missing source", func() error { return r.CopySerial("a", "/nonexistent/serial.log") }, "no such file"},
		{"copied twice", func() error { r.SaveLab(nil); return r.SaveLab(nil) }, "each file is copied in once"},
		{"event without source", func() error { return r.Event(Event{Action: "x"}) }, "source and action are required"},
		{"event args not JSON", func() error { return r.Event(Event{Source: "cli", Action: "x", Args: map[string]any{"f": func() {}}}) }, "args must be plain JSON values"},
		{"close status", func() error { return r.Close("done", "") }, `status "done": want complete, incomplete or failed`},
		{"rm running", func() error { return Remove(r.Dir()) }, "still recording"},
		{"export running", func() error { return Export(r.Dir(), io.Discard) }, "still recording"},
		{"export file running", func() error {
			out := filepath.Join(t.TempDir(), "x.tar.gz")
			err := ExportFile(r.Dir(), out)
			if left, _ := filepath.Glob(out + "*"); len(left) > 0 {
				return errors.New("left behind: " + strings.Join(left, " "))
			}
			return err
		}, "still recording"},
		{"open nothing", func() error { _, err := Open(filepath.Join(root, "lab1", "nope")); return err }, "no run.json there"},
		{"list bad lab", func() error { _, err := List(root, "../etc"); return err }, `lab "../etc" cannot name a file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
}

func TestClosedAndRemoved(t *testing.T) {
	root := t.TempDir()
	r, err := Create(root, Meta{Lab: "lab1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(StatusFailed, "libvirtd went away"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(StatusComplete, ""); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, err := range map[string]error{
		"position": r.Position(time.Time{}, Position{Host: "a"}),
		"event":    r.Event(Event{Source: "cli", Action: "x"}),
		"workload": r.WorkloadLine(time.Time{}, "a", "w", Stdout, []byte("{}")),
		"pcap":     r.CopyPcap("p", "/dev/null"),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	list, _ := List(root, "")
	if len(list) != 1 || list[0].Status != StatusFailed || list[0].Reason != "libvirtd went away" {
		t.Errorf("List = %+v", list)
	}
	if err := Remove(r.Dir()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "lab1")); !os.IsNotExist(err) {
		t.Errorf("the lab's empty folder stayed: %v", err)
	}
	if list, err := List(root, ""); err != nil || len(list) != 0 {
		t.Errorf("after rm: %v, %v", list, err)
	}
}

// TestConcurrentAppends: many writers at once, the flusher running, and
// every row lands once and whole.
func TestConcurrentAppends(t *testing.T) {
	r, err := Create(t.TempDir(), Meta{Lab: "lab1"})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r.Position(time.Time{}, Position{Host: "a", X: float64(w), Y: float64(i)})
				r.Event(Event{Source: SourceAPI, Action: "marker"})
				r.WorkloadLine(time.Time{}, "a", "w", Stdout, []byte(`{"i": 1}`))
				if i%50 == 0 {
					r.Flush()
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Close(StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	run, err := Open(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	ps, err := run.Positions()
	if err != nil || len(ps) != writers*each {
		t.Fatalf("%d positions, %v; want %d", len(ps), err, writers*each)
	}
	seen := map[[2]float64]bool{}
	for _, p := range ps {
		seen[[2]float64{p.X, p.Y}] = true
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct rows, want %d", len(seen), writers*each)
	}
	ws, err := run.Workload("a", "w")
	if err != nil || len(ws) != writers*each {
		t.Errorf("%d workload lines, %v", len(ws), err)
	}
}

// TestFlushedWithinASecond: without any Flush call, rows reach the disk
// within the flush interval.
func TestFlushedWithinASecond(t *testing.T) {
	r, err := Create(t.TempDir(), Meta{Lab: "lab1"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(StatusComplete, "")
	r.Position(time.Time{}, Position{Host: "a"})
	r.WorkloadLine(time.Time{}, "a", "w", Stdout, []byte(`{"x": 1}`))
	deadline := time.Now().Add(FlushInterval + 2*time.Second)
	for time.Now().Before(deadline) {
		run, err := Open(r.Dir())
		if err != nil {
			t.Fatal(err)
		}
		ps, _ := run.Positions()
		ws, _ := run.Workload("a", "w")
		if len(ps) == 1 && len(ws) == 1 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("rows not on disk %v after they were recorded", FlushInterval+2*time.Second)
}

// TestCloseWhileFlushing: Close never deadlocks with flushes that keep
// run.json busy, and ends with the final status on disk.
func TestCloseWhileFlushing(t *testing.T) {
	for range 20 {
		r, err := Create(t.TempDir(), Meta{Lab: "lab1"})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					r.SetNote("n", "x")
					r.WorkloadLine(time.Time{}, "a", "w", Stdout, []byte("x"))
					r.Flush()
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		closed := make(chan error)
		go func() { closed <- r.Close(StatusComplete, "") }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close hangs while others flush")
		}
		close(stop)
		wg.Wait()
		run, err := Open(r.Dir())
		if err != nil || run.Meta.Status != StatusComplete {
			t.Fatalf("after Close: %v, %v", run, err)
		}
	}
}

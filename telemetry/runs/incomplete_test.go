package runs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goneProcess returns the pid of a process that has ended.
func goneProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot start a process to take a pid from: %v", err)
	}
	return cmd.Process.Pid
}

// TestIncompleteWhenRecorderGone: a run.json that says running is
// reported as running only while its very recorder process lives.
func TestIncompleteWhenRecorderGone(t *testing.T) {
	tests := []struct {
		name   string
		change func(p *Process)
		want   Status
	}{
		{"recorder alive", func(*Process) {}, StatusRunning},
		{"pid gone", func(p *Process) { p.PID = goneProcess(t) }, StatusIncomplete},
		{"pid reused by another process", func(p *Process) { p.StartTicks++ }, StatusIncomplete},
		{"machine rebooted", func(p *Process) { p.BootID = "00000000-0000-0000-0000-000000000000" }, StatusIncomplete},
		{"no pid", func(p *Process) { p.PID = 0 }, StatusIncomplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			r, err := Create(root, Meta{Lab: "lab1"})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(StatusIncomplete, "test over")
			if err := r.Position(time.Time{}, Position{Host: "a", X: 1}); err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			// Not closed: rewrite the recorder as the test case says.
			r.mu.Lock()
			m := r.meta
			r.mu.Unlock()
			tt.change(&m.Recorder)
			if err := writeMeta(r.Dir(), &m); err != nil {
				t.Fatal(err)
			}
			list, err := List(root, "lab1")
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Status != tt.want {
				t.Fatalf("List = %+v, want one run %s", list, tt.want)
			}
			if tt.want == StatusIncomplete && !strings.Contains(list[0].Reason, "ended without closing") {
				t.Errorf("reason %q does not say what happened", list[0].Reason)
			}
			run, err := Open(r.Dir())
			if err != nil {
				t.Fatal(err)
			}
			if run.Meta.Status != tt.want {
				t.Errorf("Open: status %s, want %s", run.Meta.Status, tt.want)
			}
			ps, err := run.Positions()
			if err != nil || len(ps) != 1 {
				t.Errorf("positions of the unclosed run: %v, %v", ps, err)
			}
		})
	}
}

// TestKilledRecorder runs a recorder in a child process, kills it with
// SIGKILL while it writes, and reads what it left: listed as incomplete,
// every whole row readable, at most about a second of rows lost.
func TestKilledRecorder(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FORGELAB_RUNS_HELPER="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The helper prints how many rows it had written when it saw them on
	// disk; after that, kill it mid-write.
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "flushed") {
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	killed := time.Now()

	list, err := List(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Status != StatusIncomplete {
		t.Fatalf("after SIGKILL: %+v, want one incomplete run", list)
	}
	r, err := Open(list[0].Dir)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := r.Positions()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 {
		t.Fatal("no positions survived the kill")
	}
	// Rows come every 10 ms; what is on disk must reach to within the
	// flush interval (plus slack for a loaded machine) of the kill.
	last := ps[len(ps)-1].Time
	if lost := killed.Sub(last); lost > FlushInterval+time.Second {
		t.Errorf("last row %v before the kill; want at most about %v lost", lost, FlushInterval)
	}
	for i, p := range ps {
		if p.Host != "a" || p.X != float64(i) {
			t.Fatalf("row %d = %+v: rows lost or damaged in the middle", i, p)
		}
	}
	var rows int64
	for _, f := range r.Meta.Files {
		if f.Path == PositionsFile && f.Rows != nil {
			rows = *f.Rows
		}
	}
	if rows != int64(len(ps)) {
		t.Errorf("show counts %d rows, reader %d", rows, len(ps))
	}
}

// TestMain lets the test binary be TestKilledRecorder's child: a recorder
// that writes until it is killed (a function, not a test, so nothing is
// listed as skipped).
func TestMain(m *testing.M) {
	if root := os.Getenv("FORGELAB_RUNS_HELPER"); root != "" {
		recorderHelper(root)
	}
	os.Exit(m.Run())
}

func recorderHelper(root string) {
	r, err := Create(root, Meta{Lab: "lab1", Scenario: "killed"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	path := filepath.Join(r.Dir(), PositionsFile)
	said := false
	for i := 0; ; i++ {
		r.Position(time.Time{}, Position{Host: "a", X: float64(i)})
		r.Event(Event{Source: SourceScenario, Action: "marker", Args: map[string]any{"i": i}})
		if data, _ := os.ReadFile(path); !said && strings.Count(string(data), "\n") > 1 {
			fmt.Println("flushed", i)
			said = true
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCutRow: a kill in the middle of a write leaves half a row; readers
// drop it and keep the rest.
func TestCutRow(t *testing.T) {
	f := writeFixture(t, t.TempDir())
	for _, file := range []string{PositionsFile, EventsFile, "workloads/b-bob.jsonl"} {
		p := filepath.Join(f.dir, file)
		fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fh.WriteString(`2026-12-01T23:45:15.000000000Z,3,a,1`) // no newline: cut short
		fh.Close()
	}
	// Mark it unclosed, as a kill would leave it.
	var m Meta
	data, _ := os.ReadFile(filepath.Join(f.dir, MetaFile))
	json.Unmarshal(data, &m)
	m.Status, m.End, m.Recorder.PID = StatusRunning, time.Time{}, goneProcess(t)
	writeMeta(f.dir, &m)

	r, err := Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.Status != StatusIncomplete {
		t.Errorf("status %s", r.Meta.Status)
	}
	ps, err := r.Positions()
	if err != nil || len(ps) != len(f.positions) {
		t.Errorf("positions: %d rows, %v; want %d", len(ps), err, len(f.positions))
	}
	es, err := r.Events()
	if err != nil || len(es) != len(f.events) {
		t.Errorf("events: %d, %v; want %d", len(es), err, len(f.events))
	}
	ws, err := r.Workload("b", "bob")
	if err != nil || len(ws) != len(f.workload) {
		t.Errorf("workload: %d, %v; want %d", len(ws), err, len(f.workload))
	}
	for _, file := range r.Meta.Files {
		if file.Path == PositionsFile && *file.Rows != int64(len(f.positions)) {
			t.Errorf("recounted %d rows, want %d", *file.Rows, len(f.positions))
		}
	}
}

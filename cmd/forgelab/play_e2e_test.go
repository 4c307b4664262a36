package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// playChecks runs on the babeld handover lab of TestHandoverRuns (3 VMs,
// babeld as a service on each, Alice and Bob starting with each run),
// after its main run, so it boots nothing of its own (about 40 s):
//
//   - logs -f LAB follows every host's services and the workloads while
//     a short run plays a scenario with an exec action; the exec's
//     output and exit code are in the run folder; the run's qualities
//     went to the engine as one schedule and each applied change is in
//     the run's events with its lateness; Ctrl-C ends logs -f, and no
//     journalctl is left on any guest;
//   - a runner killed by SIGKILL mid-run: its folder reads incomplete,
//     the next command puts every link back to the declared quality and
//     cancels the engine's schedule (the links stay put a while later),
//     and the lab works.
func playChecks(t *testing.T, lab, variant string) {
	if variant != "babeld" {
		return
	}
	t.Run("exec and logs -f", func(t *testing.T) { execAndFollow(t, lab) })
	t.Run("runner killed", func(t *testing.T) { runnerKilled(t, lab) })
}

func execAndFollow(t *testing.T, lab string) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "exec.toml")
	os.WriteFile(scenario, []byte(`duration = "8s"

[[event]]
at = "1s"
do = "exec"
host = "b"
command = "echo exec-says-hello; cat /etc/hostname; ip -4 -br addr show dev lo"
`), 0o644)

	follow := exec.Command(binPath, "--state-dir", stateDir(), "logs", "-f", "-n", "5", lab)
	var followed, ferr bytes.Buffer
	follow.Stdout, follow.Stderr = &followed, &ferr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			follow.Process.Kill()
			follow.Wait()
		}
	}()

	runDir := strings.TrimSpace(mustForgelab(t, "run", "--no-status", lab, scenario))
	r, err := runs.Open(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.Status != runs.StatusComplete {
		t.Errorf("exec run %s: %s", r.Meta.Status, r.Meta.Reason)
	}
	evs, err := r.Events()
	if err != nil {
		t.Fatal(err)
	}
	var late []float64
	schedules := 0
	for _, e := range evs {
		switch {
		case e.Action == "exec.end":
			if e.Error != "" || e.Args["exit_code"] != 0.0 || e.Args["host"] != "b" {
				t.Errorf("exec.end %+v", e)
			}
		case e.Action == "link.schedule" && e.Source == "scenario":
			schedules++
		case e.Action == "link.set" && e.Source == "scenario":
			if l, ok := e.Args["late_s"].(float64); ok {
				late = append(late, l)
			}
		}
	}
	if schedules != 1 || len(late) < 3 {
		t.Errorf("run events: %d link.schedule, %d changes applied by the engine with their lateness; want 1 and >= 3", schedules, len(late))
	}
	if len(late) > 0 {
		slices.Sort(late)
		t.Logf("%d quality changes applied by the engine: lateness p50 %.2f ms, p99 %.2f ms, max %.2f ms",
			len(late), 1e3*late[len(late)/2], 1e3*late[min(len(late)-1, len(late)*99/100)], 1e3*late[len(late)-1])
	}
	outs, _ := filepath.Glob(filepath.Join(runDir, "workloads", "b-exec-*-1000ms.stdout"))
	if len(outs) != 1 {
		t.Fatalf("exec output in the run folder: %v", outs)
	}
	if out, _ := os.ReadFile(outs[0]); !strings.Contains(string(out), "exec-says-hello") || !strings.Contains(string(out), "127.0.0.1") {
		t.Errorf("exec output: %q", out)
	}

	time.Sleep(time.Second) // the last workload lines reach the follower
	follow.Process.Signal(syscall.SIGINT)
	waited := make(chan error, 1)
	go func() { waited <- follow.Wait() }()
	select {
	case err := <-waited:
		stopped = true
		if err != nil {
			t.Errorf("logs -f after Ctrl-C: %v\n%s", err, ferr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("logs -f did not end within 15 s of Ctrl-C")
	}
	got := followed.String()
	for _, want := range []string{"a workload alice | {", "b workload bob | "} {
		if !strings.Contains(got, want) {
			t.Errorf("logs -f shows no %q line:\n%s", want, lastN(got, 30))
		}
	}
	for _, h := range []string{"a", "b", "c"} {
		if !slices.ContainsFunc(strings.Split(got, "\n"), func(l string) bool {
			return strings.HasPrefix(l, h+" ") && !strings.HasPrefix(l, h+" workload ") && !strings.HasPrefix(l, h+" forgelab ")
		}) {
			t.Errorf("logs -f shows no service line of %s:\n%s", h, lastN(got, 30))
		}
	}
	// The remote followers ended with their sessions.
	for _, h := range []string{"a", "b", "c"} {
		var left string
		for range 10 {
			left = strings.TrimSpace(forgelab(t, "exec", lab, h, "--", "pgrep -a journalctl || true").stdout)
			if left == "" {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if left != "" {
			t.Errorf("journalctl left running on %s after logs -f ended: %s", h, left)
		}
	}
}

func runnerKilled(t *testing.T, lab string) {
	scenario, err := filepath.Abs("../../examples/handover.toml")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "--state-dir", stateDir(), "run", "--no-status", "--for", "40s", lab, scenario)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // the engine has given every link its modelled quality by now
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	list, err := runs.List(runs.Root(stateDir()), lab)
	if err != nil || len(list) == 0 {
		t.Fatalf("runs of %s: %v %v", lab, list, err)
	}
	newest := slices.MaxFunc(list, func(a, b runs.Summary) int { return a.Start.Compare(b.Start) })
	if newest.Status != runs.StatusIncomplete {
		t.Errorf("killed run %s is %s, want incomplete", newest.ID, newest.Status)
	}
	if show := linkStates(t, lab); !slices.ContainsFunc(show.Links, func(l netfabric.LinkState) bool {
		return slices.ContainsFunc(l.Directions, func(d netfabric.Direction) bool { return d.Quality != (netfabric.Impairment{}) })
	}) {
		t.Errorf("no link had the run's quality when its runner was killed: %+v", show)
	}
	// The next command through the control path puts the links back.
	mustForgelab(t, "link", "up", lab, "ab")
	checkDeclared(t, lab)
	time.Sleep(2 * time.Second) // the schedule would have changed them again by now
	checkDeclared(t, lab)
	if out := forgelab(t, "exec", lab, "a", "--", "true"); out.code != 0 {
		t.Errorf("lab unusable after a killed run: %s", out.stderr)
	}
	var evs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(fileText(t, filepath.Join(stateDir(), "labs", lab, "events.jsonl"))), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil {
			evs = append(evs, e)
		}
	}
	if !slices.ContainsFunc(evs, func(e map[string]any) bool { return e["action"] == "run.recover" }) {
		t.Errorf("no run.recover in the lab's event log")
	}
}

func linkStates(t *testing.T, lab string) netfabric.State {
	t.Helper()
	var st netfabric.State
	if err := json.Unmarshal([]byte(mustForgelab(t, "link", "show", "-o", "json", lab)), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func fileText(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(fmt.Errorf("read %s: %w", path, err))
	}
	return string(data)
}

package labs

// Workloads run in the background, in a helper process of their own
// (`forgelab workloadd LAB`), so that create can return while they run and
// they keep running after it. create renders every workload for every one
// of its hosts into workloads/plan.json; the helper runs them all at once
// and writes, per workload and host, into workloads/<name>/<host>/:
//
//	status.json            state (running, exited, failed), times, exit code, metric count
//	<name>.stdout/.stderr  everything it wrote
//	<name>.metrics.jsonl   every JSON object it printed on stdout, one per line, with the time
//
// Destroy stops the helper (a store.KindProcess), which ends every workload
// still running on its host before it exits.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/forgelab/forgelab/internal/proc"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/provision"
)

// plannedWorkload is one workload on one host, rendered.
type plannedWorkload struct {
	Host     string             `json:"host"`
	Workload provision.Workload `json:"workload"`
}

// Workload states.
const (
	WorkloadPending = "pending" // not started yet
	WorkloadRunning = "running"
	WorkloadExited  = "exited" // ran to its end (ExitCode says how)
	WorkloadFailed  = "failed" // could not run, or lost its host
	WorkloadLost    = "lost"   // running, but the helper is gone
)

// WorkloadStatus is what `forgelab workload` shows for one workload on one
// host.
type WorkloadStatus struct {
	Name       string         `json:"name"`
	Host       string         `json:"host"`
	State      string         `json:"state"`
	Started    time.Time      `json:"started,omitzero"`
	Ended      time.Time      `json:"ended,omitzero"`
	ExitCode   int            `json:"exit_code"`
	TimedOut   bool           `json:"timed_out,omitempty"`
	Error      string         `json:"error,omitempty"`
	Metrics    int            `json:"metrics"`
	LastMetric map[string]any `json:"last_metric,omitempty"`
	Dir        string         `json:"dir"`
	Stdout     string         `json:"stdout,omitempty"`
	Stderr     string         `json:"stderr,omitempty"`
	MetricFile string         `json:"metrics_file,omitempty"`
}

// Done reports whether the workload has ended.
func (w WorkloadStatus) Done() bool {
	return w.State == WorkloadExited || w.State == WorkloadFailed || w.State == WorkloadLost
}

// startWorkloads renders the workloads, writes the plan and starts the
// helper that runs them.
func (m *Manager) startWorkloads(ctx context.Context, rec *Recorder, sp *Spec) error {
	if len(sp.Workloads) == 0 {
		return nil
	}
	st := rec.State()
	var planned []plannedWorkload
	for _, w := range sp.Workloads {
		if w.Start != spec.StartCreate {
			continue // forgelab run or bench starts it
		}
		for _, h := range st.Plan.Hosts {
			if !spec.OnHost(w.Hosts, h.Name) {
				continue
			}
			wl, err := toWorkload(w, hostFacts(st.Plan, st.Coord, h.Name))
			if err != nil {
				return fmt.Errorf("workload %s on host %s: %w", w.Name, h.Name, err)
			}
			planned = append(planned, plannedWorkload{Host: h.Name, Workload: wl})
		}
	}
	if len(planned) == 0 {
		return nil
	}
	l := m.Store.LayoutOf(st)
	if err := os.MkdirAll(l.Workloads(), 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(planned, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(l.WorkloadsPlan(), data, 0o600); err != nil { // env values
		return err
	}
	pidFile := l.RunnerPID()
	if err := rec.Record(store.KindProcess, pidFile); err != nil {
		return err
	}
	if err := m.software().StartWorkloads(ctx, st.Lab, pidFile, l.RunnerLog()); err != nil {
		return err
	}
	m.progress("%d workloads started in the background: `forgelab workload [--wait] %s` shows them", len(planned), st.Lab)
	return nil
}

// RunWorkloads runs every planned workload of a lab at once and returns
// when all have ended, or ctx ends (then it ends those still running on
// their hosts). It is the body of `forgelab workloadd`.
func (m *Manager) RunWorkloads(ctx context.Context, lab string) error {
	st, err := m.Store.Load(lab)
	if err != nil {
		return err
	}
	l := m.Store.LayoutOf(st)
	planned, err := readPlan(l.WorkloadsPlan())
	if err != nil {
		return err
	}
	conns := map[string]Remote{}
	var cmu sync.Mutex
	connect := func(host string) (Remote, error) {
		cmu.Lock()
		defer cmu.Unlock()
		if r, ok := conns[host]; ok {
			return r, nil
		}
		r, err := m.software().Connect(ctx, st, host)
		if err != nil {
			return nil, err
		}
		conns[host] = r
		return r, nil
	}
	defer func() {
		for _, r := range conns {
			r.Close()
		}
	}()
	var wg sync.WaitGroup
	for _, pw := range planned {
		wg.Add(1)
		go func(pw plannedWorkload) {
			defer wg.Done()
			out := l.WorkloadDir(pw.Workload.Name, pw.Host)
			os.MkdirAll(out, 0o755)
			ws := WorkloadStatus{Name: pw.Workload.Name, Host: pw.Host, State: WorkloadRunning, Started: time.Now().UTC(), Dir: out}
			writeStatus(out, ws)
			r, err := connect(pw.Host)
			if err == nil {
				var res provision.WorkloadResult
				res, err = r.RunWorkload(ctx, pw.Workload, out)
				ws.ExitCode, ws.TimedOut = res.ExitCode, res.TimedOut
				ws.Stdout, ws.Stderr, ws.MetricFile = res.Stdout, res.Stderr, res.MetricsFile
				ws.Metrics = len(res.Metrics)
				if n := len(res.Metrics); n > 0 {
					ws.LastMetric = res.Metrics[n-1].Values
				}
			}
			ws.Ended = time.Now().UTC()
			ws.State = WorkloadExited
			if err != nil {
				ws.State, ws.Error = WorkloadFailed, err.Error()
			}
			writeStatus(out, ws)
			fmt.Printf("%s workload %s on %s: %s (exit %d, %d metrics)\n", time.Now().Format(time.RFC3339), ws.Name, ws.Host, ws.State, ws.ExitCode, ws.Metrics)
		}(pw)
	}
	wg.Wait()
	return ctx.Err()
}

func readPlan(path string) ([]plannedWorkload, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("workload plan: %w", err)
	}
	var planned []plannedWorkload
	if err := json.Unmarshal(data, &planned); err != nil {
		return nil, fmt.Errorf("workload plan %s: %w", path, err)
	}
	return planned, nil
}

func writeStatus(dir string, ws WorkloadStatus) error {
	data, err := json.MarshalIndent(ws, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".status.json.tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, store.WorkloadStatus))
}

// Workloads lists the status of a lab's workloads (name "" for all), in
// plan order.
func (m *Manager) Workloads(lab, name string) ([]WorkloadStatus, error) {
	st, err := m.Store.Load(lab)
	if err != nil {
		return nil, err
	}
	l := m.Store.LayoutOf(st)
	planned, err := readPlan(l.WorkloadsPlan())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	runnerAlive := proc.Alive(l.RunnerPID(), l.RunnerPID())
	var out []WorkloadStatus
	found := false
	for _, pw := range planned {
		if name != "" && pw.Workload.Name != name {
			continue
		}
		found = true
		d := l.WorkloadDir(pw.Workload.Name, pw.Host)
		ws := WorkloadStatus{Name: pw.Workload.Name, Host: pw.Host, State: WorkloadPending, Dir: d}
		if data, err := os.ReadFile(filepath.Join(d, store.WorkloadStatus)); err == nil {
			json.Unmarshal(data, &ws)
		}
		if !ws.Done() && !runnerAlive {
			ws.State = WorkloadLost
			ws.Error = "the workload runner is not running (see " + l.RunnerLog() + ")"
		}
		if ws.State == WorkloadRunning {
			ws.Metrics, ws.LastMetric = countMetrics(filepath.Join(d, pw.Workload.Name+".stdout"))
		}
		out = append(out, ws)
	}
	if name != "" && !found {
		var names []string
		for _, pw := range planned {
			if !containsString(names, pw.Workload.Name) {
				names = append(names, pw.Workload.Name)
			}
		}
		sort.Strings(names)
		return nil, fmt.Errorf("lab %s has no workload %q (workloads: %s)", lab, name, strings.Join(names, ", "))
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// countMetrics counts the JSON object lines of a running workload's stdout
// so far and returns the last one.
func countMetrics(stdout string) (int, map[string]any) {
	f, err := os.Open(stdout)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	n := 0
	var last map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var v map[string]any
		if json.Unmarshal([]byte(line), &v) == nil {
			n++
			last = v
		}
	}
	return n, last
}

// WaitWorkloads waits until every workload (name "" for all) has ended,
// or ctx ends, and returns their statuses.
func (m *Manager) WaitWorkloads(ctx context.Context, lab, name string) ([]WorkloadStatus, error) {
	for {
		ws, err := m.Workloads(lab, name)
		if err != nil {
			return nil, err
		}
		done := true
		for _, w := range ws {
			done = done && w.Done()
		}
		if done {
			return ws, nil
		}
		select {
		case <-ctx.Done():
			return ws, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

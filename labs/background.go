package labs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/internal/proc"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// Errors of runs started and stopped for serve.
var (
	ErrRunActive   = errors.New("a run is playing")
	ErrNoRun       = errors.New("no run is playing")
	ErrBadScenario = errors.New("bad scenario")
	ErrNotReady    = errors.New("lab not ready")
)

// Actions of runs started and stopped for serve (the run itself logs the
// rest, as one started at a terminal does).
const (
	ActionRunStart = "run.start"
	ActionRunStop  = "run.stop"
)

// Files of a run started in the background, in the lab directory.
const (
	backgroundRunPID = "run-background.pid"
	backgroundRunLog = "run-background.log"
)

// ScenarioFile resolves a scenario a lab knows: "" is the lab file's own
// [scenario]; otherwise the name of a file next to the lab file (".toml"
// may be left off). A name with a path in it is refused: a request may
// not read files elsewhere.
func ScenarioFile(st *State, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	if name != filepath.Base(name) || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("%w: %q: give the name of a scenario file next to the lab file %s, not a path", ErrBadScenario, name, st.File)
	}
	dir := filepath.Dir(st.File)
	for _, n := range []string{name, name + ".toml"} {
		p := filepath.Join(dir, n)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no scenario file %q next to the lab file %s (put it there, or play the lab file's own with an empty name)", ErrBadScenario, name, st.File)
}

// StartRun plays a scenario on a lab in a `forgelab run` process of its
// own (exe is the forgelab binary), for serve: the run outlives the
// request, records the same run folder and resets the links at its end,
// as one typed at a terminal does. It checks the scenario first and
// returns the run's folder once the run is playing, or why it did not
// start.
func (m *Manager) StartRun(ctx context.Context, src Source, exe, lab, scenarioName string) (string, error) {
	st, err := m.Store.Load(lab)
	if err != nil {
		return "", err
	}
	if st.Phase != store.PhaseReady || st.Plan == nil {
		return "", fmt.Errorf("%w: lab %s is %s (forgelab inspect %s says more)", ErrNotReady, lab, st.Phase, lab)
	}
	l := m.Store.LayoutOf(st)
	if mk, ok := readRunMarker(l); ok && mk.Recorder.Alive() {
		return "", fmt.Errorf("%w on lab %s (%s, process %d): stop it first", ErrRunActive, lab, mk.Dir, mk.Recorder.PID)
	}
	file, err := ScenarioFile(st, scenarioName)
	if err != nil {
		return "", err
	}
	if _, err := m.prepareRun(st, l, RunOptions{Scenario: file}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadScenario, err)
	}
	argv := []string{exe, "--state-dir", m.Store.Dir, "run", "--no-status", lab}
	if file != "" {
		argv = append(argv, file)
	}
	var dir string
	_, err = proc.Start(ctx, proc.Cmd{
		Argv:    argv,
		Log:     filepath.Join(l.Dir, backgroundRunLog),
		PIDFile: filepath.Join(l.Dir, backgroundRunPID),
		Ready: func(pid int) error {
			mk, ok := readRunMarker(l)
			if !ok || mk.Recorder.PID != pid || !mk.Recorder.Alive() {
				return errors.New("its run folder is not made yet")
			}
			dir = mk.Dir
			return nil
		},
		// The run first puts back what a killed run left and may check
		// that the machine is quiet; then it makes its folder.
		Timeout: 2 * time.Minute,
	})
	m.note(lab, src, ActionRunStart, map[string]any{"scenario": scenarioName, "run": dir}, err)
	if err != nil {
		return "", fmt.Errorf("start the run: %w", err)
	}
	return dir, nil
}

// StopRun ends the run playing on a lab, whoever started it, as Ctrl-C
// in its terminal would: the runner puts the links back and closes its
// folder. It returns once the runner has ended.
func (m *Manager) StopRun(ctx context.Context, src Source, lab string) error {
	st, err := m.Store.Load(lab)
	if err != nil {
		return err
	}
	mk, ok := readRunMarker(m.Store.LayoutOf(st))
	if !ok || !mk.Recorder.Alive() {
		return fmt.Errorf("%w on lab %s", ErrNoRun, lab)
	}
	err = stopRunner(ctx, mk.Recorder)
	m.note(lab, src, ActionRunStop, map[string]any{"run": mk.Dir, "pid": mk.Recorder.PID}, err)
	if err != nil {
		return fmt.Errorf("stop the run of lab %s (process %d): %w", lab, mk.Recorder.PID, err)
	}
	return nil
}

// stopRunner sends a run's recorder SIGTERM and waits for it to end. The
// signal goes through a pidfd checked against the recorded process, so a
// recycled pid is never signalled.
func stopRunner(ctx context.Context, p runs.Process) error {
	fd, err := unix.PidfdOpen(p.PID, 0)
	if err != nil {
		return nil // gone already
	}
	defer unix.Close(fd)
	if !p.Alive() {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, syscall.SIGTERM, nil, 0); err != nil {
		return err
	}
	for p.Alive() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("still putting its links back: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// note appends an event to a lab's log; a failed write is not worth
// failing what was done for.
func (m *Manager) note(lab string, src Source, action string, args map[string]any, err error) {
	e := store.Event{Source: string(src), Action: action, Args: args, Result: store.ResultOK}
	if err != nil {
		e.Result, e.Error = store.ResultError, err.Error()
	}
	_ = m.Store.AppendEvent(lab, e)
}

// Package proc starts forgelab's background helpers (the fabric daemon,
// the coordination service, the workload runner) and stops them again.
//
// A pid file names a process by its pid, its start time (field 22 of
// /proc/PID/stat, clock ticks since boot) and the boot id: a pid alone is
// reused, after a reboot or a long uptime, by an unrelated process that
// destroy, running as root, would otherwise kill. Stop signals only a
// process that matches all three, and signals it through a pidfd opened
// before the check, so the number cannot change hands in between.
//
// It lives under internal/ at the module root because both labs (coordd,
// workloadd) and netfabric/userspace (fabricd) launch helpers, and
// neither should reach into the other for it.
package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Record is what a pid file holds.
type Record struct {
	PID   int
	Start uint64 // clock ticks since boot; 0 in pid files of older forgelab versions
	Boot  string // /proc/sys/kernel/random/boot_id
}

func (r Record) String() string { return fmt.Sprintf("%d %d %s\n", r.PID, r.Start, r.Boot) }

// Identify reads the record of a live process.
func Identify(pid int) (Record, error) {
	start, err := startTime(pid)
	if err != nil {
		return Record{}, err
	}
	boot, err := bootID()
	if err != nil {
		return Record{}, err
	}
	return Record{PID: pid, Start: start, Boot: boot}, nil
}

func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// from the last ')'. Field 3 (state) is then the first.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: only %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22
}

func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadFile reads a pid file. A missing file is os.ErrNotExist.
func ReadFile(path string) (Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Record{}, err
	}
	f := strings.Fields(string(b))
	var r Record
	if len(f) > 0 {
		r.PID, err = strconv.Atoi(f[0])
	}
	if err != nil || r.PID <= 1 || len(f) == 2 || len(f) > 3 {
		return Record{}, fmt.Errorf("pid file %s: bad contents %q: remove it if no forgelab helper runs", path, b)
	}
	if len(f) == 3 {
		if r.Start, err = strconv.ParseUint(f[1], 10, 64); err != nil {
			return Record{}, fmt.Errorf("pid file %s: bad start time %q: remove it if no forgelab helper runs", path, f[1])
		}
		r.Boot = f[2]
	}
	return r, nil
}

// WriteFile writes r to path atomically (0600).
func WriteFile(path string, r Record) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(r.String()), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Matches reports whether the live process r.PID is the one r recorded.
// A record without a start time (older forgelab) matches only a process
// whose command line contains legacyMark (say, the lab's directory).
func (r Record) Matches(legacyMark string) bool {
	if r.Start == 0 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(r.PID) + "/cmdline")
		return err == nil && legacyMark != "" && strings.Contains(string(b), legacyMark)
	}
	now, err := Identify(r.PID)
	return err == nil && now == r
}

// Alive reports whether the helper a pid file names runs (not a zombie).
func Alive(pidFile, legacyMark string) bool {
	r, err := ReadFile(pidFile)
	if err != nil || !r.Matches(legacyMark) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(r.PID) + "/stat")
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return err == nil && i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// RemoveIfSelf is for a helper at its end: it removes the pid file when
// it names this process, and leaves a newer helper's alone.
func RemoveIfSelf(path string) {
	if r, err := ReadFile(path); err == nil && r.PID == os.Getpid() && r.Matches("") {
		os.Remove(path)
	}
}

// Cmd is a helper to start.
type Cmd struct {
	Argv    []string
	Env     []string   // added to this process's environment
	Files   []*os.File // passed as fd 3, 4, ... (listeners bound by the caller)
	Log     string     // stdout and stderr, appended (0600)
	PIDFile string     // written with the helper's Record once it runs
	// Ready says whether the helper (pid) is up; nil: up once started.
	Ready func(pid int) error
	// Timeout bounds the wait for Ready; 0 is 15 s.
	Timeout time.Duration
}

// ExitedError is a helper that ended before it was ready.
type ExitedError struct {
	Name string
	Err  error // from Wait: nil for exit status 0
	Log  string
}

func (e *ExitedError) Error() string {
	return fmt.Sprintf("%s exited (%v): %s", e.Name, e.Err, e.Log)
}

// Start runs c in a session of its own (neither the CLI ending nor a
// Ctrl-C in its terminal stops it), writes its pid file, and waits until
// c.Ready passes, it exits (*ExitedError), ctx ends or the timeout passes
// (it is killed then).
func Start(ctx context.Context, c Cmd) (int, error) {
	if len(c.Argv) == 0 {
		return 0, errors.New("start helper: no command")
	}
	name := c.Argv[0]
	if len(c.Argv) > 1 {
		name = c.Argv[1]
	}
	logf, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.ExtraFiles = c.Files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	// Not reaped before Wait: the pid cannot be reused while we read it.
	rec, err := Identify(cmd.Process.Pid)
	if err == nil {
		err = WriteFile(c.PIDFile, rec)
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, fmt.Errorf("start %s: pid file: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reap it if it ends while we live
	if c.Ready == nil {
		return cmd.Process.Pid, nil
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		rerr := c.Ready(cmd.Process.Pid)
		if rerr == nil {
			return cmd.Process.Pid, nil
		}
		select {
		case werr := <-exited:
			return 0, &ExitedError{Name: name, Err: werr, Log: Tail(c.Log, 2000)}
		case <-ctx.Done():
			cmd.Process.Kill()
			return 0, ctx.Err()
		case <-deadline.C:
			cmd.Process.Kill()
			return 0, fmt.Errorf("%s did not start within %s (%v): %s", name, timeout, rerr, Tail(c.Log, 2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StopOptions tune Stop.
type StopOptions struct {
	// LegacyMark identifies the helper in pid files of older versions
	// (see Record.Matches).
	LegacyMark string
	// Settle is how long the helper may take to end by itself (it was
	// asked some other way) before SIGTERM.
	Settle time.Duration
	// Grace is how long SIGTERM has before SIGKILL; 0 is 5 s.
	Grace time.Duration
}

// Stop ends the helper a pid file names: SIGTERM, then SIGKILL, waiting
// for it to go; then it removes the pid file. A process that is not the
// one recorded (gone, its pid reused) is left alone. A missing pid file
// is not an error.
func Stop(ctx context.Context, pidFile string, o StopOptions) error {
	r, err := ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pidfd, err := unix.PidfdOpen(r.PID, 0)
	if err != nil {
		return removeMissingOK(pidFile) // gone already
	}
	defer unix.Close(pidfd)
	// Checked after the pidfd pins the process: it signals this one or none.
	if !r.Matches(o.LegacyMark) {
		return removeMissingOK(pidFile)
	}
	grace := o.Grace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	if o.Settle > 0 && waitExit(ctx, pidfd, o.Settle) {
		return removeMissingOK(pidFile)
	}
	// Start made the helper a session (and group) leader: what it started
	// goes with it. The pidfd pins the leader, so its group id is still
	// its own while it is signalled.
	group := 0
	if pg, err := unix.Getpgid(r.PID); err == nil && pg == r.PID {
		group = r.PID
	}
	signal := func(sig unix.Signal) error {
		err := unix.PidfdSendSignal(pidfd, sig, nil, 0)
		if group != 0 {
			unix.Kill(-group, sig)
		}
		return err
	}
	if err := signal(unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop pid %d: %w", r.PID, err)
	}
	if !waitExit(ctx, pidfd, grace) {
		signal(unix.SIGKILL)
		if !waitExit(ctx, pidfd, 5*time.Second) {
			return fmt.Errorf("pid %d (%s) does not stop after SIGKILL", r.PID, pidFile)
		}
	} else if group != 0 {
		unix.Kill(-group, unix.SIGKILL) // children that outlived their parent's SIGTERM
	}
	return removeMissingOK(pidFile)
}

// waitExit waits until the process of pidfd has ended (a zombie counts).
func waitExit(ctx context.Context, pidfd int, d time.Duration) bool {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 || ctx.Err() != nil {
			return false
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(min(left, 100*time.Millisecond)/time.Millisecond)+1)
		if err == nil && n > 0 {
			return true
		}
	}
}

func removeMissingOK(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Tail is the last n bytes of a log file, trimmed; "no output" when empty.
func Tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "no output"
	}
	return s
}

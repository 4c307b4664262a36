package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// sleeper is an unrelated process: the kind a stale pid file may name
// after its helper ended and the number was reused.
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) // by its pid
		<-done
	})
	return cmd
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ')' {
			return len(s) > i+2 && s[i+2] != 'Z'
		}
	}
	return false
}

// A pid file that names a process forgelab did not start (a pid only, a
// record with another start time or boot) leaves that process running.
func TestStopSparesOtherProcesses(t *testing.T) {
	cmd := sleeper(t)
	pid := cmd.Process.Pid
	rec, err := Identify(pid)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, contents string }{
		{"bare pid (older forgelab)", strconv.Itoa(pid) + "\n"},
		{"other start time", Record{PID: pid, Start: rec.Start + 1, Boot: rec.Boot}.String()},
		{"other boot", Record{PID: pid, Start: rec.Start, Boot: "0b0e0000-0000-0000-0000-000000000000"}.String()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "helper.pid")
			os.WriteFile(pidFile, []byte(tc.contents), 0o600)
			if err := Stop(context.Background(), pidFile, StopOptions{LegacyMark: filepath.Dir(pidFile), Grace: time.Second}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			if !alive(pid) {
				t.Fatalf("sleep (pid %d) was killed through a pid file holding %q", pid, tc.contents)
			}
			if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("stale pid file left: %v", err)
			}
		})
	}
}

// A helper started here is stopped through its pid file: SIGTERM first,
// SIGKILL when it ignores that; what it started (the sleep under sh)
// goes with it.
func TestStartStop(t *testing.T) {
	cases := []struct {
		name   string
		script string
	}{
		{"ends on SIGTERM", "sleep 300; true"}, // sh waits for its child: the sleep is not the helper
		{"ignores SIGTERM", "trap '' TERM; while :; do sleep 0.05; done"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pidFile := filepath.Join(dir, "h.pid")
			pid, err := Start(context.Background(), Cmd{Argv: []string{"sh", "-c", tc.script}, Log: filepath.Join(dir, "h.log"), PIDFile: pidFile})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			if r, err := ReadFile(pidFile); err != nil || r.PID != pid || !r.Matches("") {
				t.Fatalf("pid file: %+v, %v", r, err)
			}
			if fi, _ := os.Stat(pidFile); fi.Mode().Perm() != 0o600 {
				t.Errorf("pid file mode %o", fi.Mode().Perm())
			}
			if err := Stop(context.Background(), pidFile, StopOptions{Grace: 300 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			if alive(pid) {
				t.Errorf("helper pid %d still runs", pid)
			}
			if left := inGroup(pid); len(left) > 0 {
				t.Errorf("the helper's children outlived it: pids %v", left)
			}
			if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pid file left: %v", err)
			}
		})
	}
}

// Start reports a helper that ends before it is ready, with its output.
func TestStartExited(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo cannot bind >&2; exit 3"},
		Log: filepath.Join(dir, "h.log"), PIDFile: filepath.Join(dir, "h.pid"),
		Ready: func(int) error { return errors.New("not yet") }})
	var ex *ExitedError
	if !errors.As(err, &ex) || ex.Err == nil || ex.Log != "cannot bind" {
		t.Fatalf("got %v", err)
	}
}

func TestReadFileBad(t *testing.T) {
	for _, s := range []string{"", "1\n", "x\n", "12 34\n", "12 x boot\n", "12 3 boot extra\n"} {
		p := filepath.Join(t.TempDir(), "p")
		os.WriteFile(p, []byte(s), 0o600)
		if _, err := ReadFile(p); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

// inGroup lists the live processes of process group pgid.
func inGroup(pgid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pg, err := syscall.Getpgid(pid); err == nil && pg == pgid && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

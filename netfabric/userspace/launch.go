package userspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Files of a lab's fabric daemon inside its state directory.
const (
	ConfigFile = "fabric.json"
	SocketFile = "fabric.sock"
	PIDFile    = "fabricd.pid"
	LogFile    = "fabricd.log"
)

// Launch starts a fabric daemon for cfg that outlives the caller: it
// writes dir/fabric.json, runs argv plus "--config dir/fabric.json
// --socket dir/fabric.sock" in a session of its own (so the CLI exiting
// or a Ctrl-C in its terminal does not stop it), records its pid in
// dir/fabricd.pid and its output in dir/fabricd.log, and returns once the
// daemon answers on its socket. argv is the command that ends in Serve,
// e.g. {"/usr/bin/forgelab", "fabricd"}.
func Launch(ctx context.Context, argv []string, dir string, cfg Config) (*Client, error) {
	if len(argv) == 0 {
		return nil, errors.New("launch fabric daemon: no command")
	}
	if err := cfg.Links.Validate(); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, ConfigFile)
	sock := filepath.Join(dir, SocketFile)
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	pid, err := NewClient(sock).Ping(pctx)
	pcancel()
	if err == nil {
		return nil, fmt.Errorf("a fabric daemon (pid %d) already serves %s: stop it first", pid, sock)
	}
	if err := WriteConfig(cfgPath, cfg); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("launch fabric daemon: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], append(argv[1:], "--config", cfgPath, "--socket", sock)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("launch fabric daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reap it if it dies while we live
	if err := os.WriteFile(filepath.Join(dir, PIDFile), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("launch fabric daemon: %w", err)
	}
	c := NewClient(sock)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		pid, err := c.Ping(pctx)
		pcancel()
		if err == nil && pid == cmd.Process.Pid {
			return c, nil
		}
		select {
		case werr := <-exited:
			return nil, fmt.Errorf("fabric daemon exited (%v): %s", werr, logTail(filepath.Join(dir, LogFile)))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return nil, fmt.Errorf("fabric daemon did not answer on %s: %s", sock, logTail(filepath.Join(dir, LogFile)))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop ends the fabric daemon of the lab whose state directory is dir:
// a shutdown request, then SIGTERM, then SIGKILL, waiting for the process
// to go. It removes the pid and socket files. Stopping a daemon that is
// not running is not an error.
func Stop(ctx context.Context, dir string) error {
	sock := filepath.Join(dir, SocketFile)
	pidPath := filepath.Join(dir, PIDFile)
	pid := readPID(pidPath)
	if pid > 0 && !isDaemon(pid, sock) {
		pid = 0 // gone, and the number was reused by something else
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = NewClient(sock).Teardown(sctx)
	if pid > 0 {
		if !waitGone(pid, 3*time.Second) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			if !waitGone(pid, 2*time.Second) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				if !waitGone(pid, 2*time.Second) {
					return fmt.Errorf("fabric daemon pid %d does not stop", pid)
				}
			}
		}
	}
	os.Remove(pidPath)
	os.Remove(sock)
	return nil
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// isDaemon checks that pid is still our daemon: its command line names
// the socket.
func isDaemon(pid int, sock string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(b, []byte(sock))
}

func waitGone(pid int, d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		// A zombie child of ours counts as gone.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "no output"
	}
	return s
}

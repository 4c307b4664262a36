package userspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/forgelab/forgelab/internal/proc"
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
	c := NewClient(sock)
	_, err = proc.Start(ctx, proc.Cmd{
		Argv:    append(append([]string{}, argv...), "--config", cfgPath, "--socket", sock),
		Log:     filepath.Join(dir, LogFile),
		PIDFile: filepath.Join(dir, PIDFile),
		Ready: func(pid int) error {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			defer pcancel()
			got, err := c.Ping(pctx)
			if err == nil && got != pid {
				err = fmt.Errorf("pid %d answers on %s, not %d", got, sock, pid)
			}
			return err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("launch fabric daemon: %w", err)
	}
	return c, nil
}

// Stop ends the fabric daemon of the lab whose state directory is dir: a
// shutdown request, then SIGTERM, then SIGKILL, waiting for the process
// to go, and only when the pid file names the daemon forgelab started
// (package proc). It removes the pid and socket files. Stopping a daemon
// that is not running is not an error.
func Stop(ctx context.Context, dir string) error {
	sock := filepath.Join(dir, SocketFile)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	torn := NewClient(sock).Teardown(sctx) == nil
	o := proc.StopOptions{LegacyMark: sock, Grace: 2 * time.Second}
	if torn {
		o.Settle = 3 * time.Second
	}
	if err := proc.Stop(context.WithoutCancel(ctx), filepath.Join(dir, PIDFile), o); err != nil {
		return fmt.Errorf("stop fabric daemon: %w", err)
	}
	os.Remove(sock)
	return nil
}

package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// Managers of services on a host.
const (
	ManagerSystemd = "systemd" // units in /etc/systemd/system
	ManagerProcess = "process" // no systemd: forgelab's own supervisor loop
)

// ServiceOptions says how to manage services on one host.
type ServiceOptions struct {
	Host    string   // host name, for messages
	Journal *Journal // adopted hosts: record every unit and file first
	// RuntimeDir holds the supervisor's files (run script, pid, log) on a
	// host without systemd; default /run/forgelab.
	RuntimeDir string
	Poll       time.Duration // readiness poll interval, default 500ms
	LogLines   int           // log lines in a readiness error, default 20
}

// Services manages the services of one host. On a host with systemd (lab
// VMs, most servers) each service is a unit forgelab-<name>.service. A host
// without systemd (containers, the test hosts made of network namespaces)
// gets a plain supervisor: a shell loop started in its own session with the
// unit's restart policy, its output in RuntimeDir/<name>/log. Manager says
// which one is in use, so the CLI can tell the user.
type Services struct {
	c       *Client
	o       ServiceOptions
	manager string
}

// NewServices looks at the host once to choose the manager: systemd when it
// is the running init (/run/systemd/system exists), the supervisor otherwise.
func NewServices(ctx context.Context, c *Client, o ServiceOptions) (*Services, error) {
	if o.Host == "" {
		o.Host = c.Target.Addr
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = "/run/forgelab"
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.LogLines <= 0 {
		o.LogLines = 20
	}
	out, err := c.Output(ctx, "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then echo systemd; else echo process; fi")
	if err != nil {
		return nil, fmt.Errorf("host %s: detect init system: %w", o.Host, err)
	}
	return &Services{c: c, o: o, manager: strings.TrimSpace(string(out))}, nil
}

// Manager is ManagerSystemd or ManagerProcess.
func (s *Services) Manager() string { return s.manager }

func (s *Services) unitPath(name string) string {
	return "/etc/systemd/system/forgelab-" + name + ".service"
}

func (s *Services) dir(name string) string { return path.Join(s.o.RuntimeDir, name) }

func (s *Services) errorf(name, format string, args ...any) error {
	return fmt.Errorf("service %s on host %s: %s", name, s.o.Host, fmt.Sprintf(format, args...))
}

// Install writes the service's unit (or supervisor script) without
// starting it. Installing again replaces it; Restart then applies it.
func (s *Services) Install(ctx context.Context, svc Service) error {
	if err := svc.Validate(); err != nil {
		return err
	}
	fs, err := openSFTP(s.c)
	if err != nil {
		return s.errorf(svc.Name, "%v", err)
	}
	defer fs.Close()
	stop := context.AfterFunc(ctx, func() { fs.Close() })
	defer stop()
	j := s.o.Journal
	if s.manager == ManagerSystemd {
		unit, err := svc.UnitFile()
		if err != nil {
			return err
		}
		// The environment first: the journal then stops the unit before
		// it removes the file.
		if len(svc.Env) > 0 {
			if err := s.installEnv(fs, svc); err != nil {
				return s.errorf(svc.Name, "%v", err)
			}
		}
		p := s.unitPath(svc.Name)
		if !j.hasKind(ChangeUnit, svc.Unit()) {
			if j != nil {
				if _, err := fs.Lstat(p); err == nil {
					return s.errorf(svc.Name, "%s exists and forgelab did not install it in this lab: remove it, or rename the service", p)
				}
			}
			if err := j.record(Change{Kind: ChangeUnit, Name: svc.Unit(), Path: p}); err != nil {
				return err
			}
		}
		if err := writeFileAtomic(fs, p, []byte(unit), 0o644); err != nil {
			return s.errorf(svc.Name, "install unit: %v", err)
		}
		if _, err := rootOutput(ctx, s.c, "systemctl daemon-reload"); err != nil {
			return s.errorf(svc.Name, "%v", err)
		}
		if svc.Oneshot { // runs at every boot; the journal's undo disables it
			if _, err := rootOutput(ctx, s.c, "systemctl enable --quiet "+ShellQuote(svc.Unit())); err != nil {
				return s.errorf(svc.Name, "enable: %v", err)
			}
		}
		return nil
	}
	if svc.Oneshot {
		return s.errorf(svc.Name, "a oneshot service needs systemd, and this host has none")
	}
	script, err := svc.supervisorScript()
	if err != nil {
		return err
	}
	dir := s.dir(svc.Name)
	if err := mkdirAll(fs, dir, 0o755, j); err != nil {
		return s.errorf(svc.Name, "%v", err)
	}
	if !j.hasKind(ChangeProcess, svc.Name) {
		if err := j.record(Change{Kind: ChangeProcess, Name: svc.Name, Path: dir}); err != nil {
			return err
		}
	}
	// 0700: the script exports the service's environment.
	if err := writeFileAtomic(fs, path.Join(dir, "run"), []byte(script), 0o700); err != nil {
		return s.errorf(svc.Name, "install supervisor: %v", err)
	}
	return nil
}

// installEnv writes the service's root-only environment file.
func (s *Services) installEnv(fs *remoteFS, svc Service) error {
	text, err := svc.EnvFileText()
	if err != nil {
		return err
	}
	if err := mkdirAll(fs, EnvDir, 0o700, s.o.Journal); err != nil {
		return err
	}
	p := svc.EnvFile()
	if j := s.o.Journal; j != nil && !j.owns(p) {
		if _, err := fs.Lstat(p); err == nil {
			return fmt.Errorf("%s exists and forgelab did not write it in this lab: remove it, or rename the service", p)
		}
		if err := j.record(Change{Kind: ChangeFile, Path: p}); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(fs, p, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write environment file: %w", err)
	}
	return nil
}

// Start starts the service (nothing happens when it runs already).
func (s *Services) Start(ctx context.Context, name string) error {
	if s.manager == ManagerSystemd {
		return s.systemctl(ctx, "start", name)
	}
	script := fmt.Sprintf(`cd -- %s || exit 1
[ -f run ] || { echo "not installed" >&2; exit 1; }
%s
if [ -f pid ] && alive "$(cat pid)"; then exit 0; fi
setsid sh ./run >>log 2>&1 </dev/null &
echo $! >pid
`, ShellQuote(s.dir(name)), aliveFunc)
	if _, err := rootScript(ctx, s.c, script); err != nil {
		return s.errorf(name, "start: %v", err)
	}
	return nil
}

// Stop stops the service (the whole process group for the supervisor:
// TERM, then KILL after 5 s).
func (s *Services) Stop(ctx context.Context, name string) error {
	if s.manager == ManagerSystemd {
		return s.systemctl(ctx, "stop", name)
	}
	if _, err := rootScript(ctx, s.c, processStopScript(s.dir(name))); err != nil {
		return s.errorf(name, "stop: %v", err)
	}
	return nil
}

// Restart stops and starts the service, picking up a new unit or binary.
func (s *Services) Restart(ctx context.Context, name string) error {
	if s.manager == ManagerSystemd {
		return s.systemctl(ctx, "restart", name)
	}
	if err := s.Stop(ctx, name); err != nil {
		return err
	}
	return s.Start(ctx, name)
}

// Remove stops the service and deletes its unit or supervisor files. For
// adopted hosts Undo does this from the journal.
func (s *Services) Remove(ctx context.Context, name string) error {
	var ch Change
	if s.manager == ManagerSystemd {
		ch = Change{Kind: ChangeUnit, Name: "forgelab-" + name + ".service", Path: s.unitPath(name)}
	} else {
		ch = Change{Kind: ChangeProcess, Name: name, Path: s.dir(name)}
	}
	if err := undoChange(ctx, s.c, ch); err != nil {
		return s.errorf(name, "remove: %v", err)
	}
	if s.manager == ManagerProcess {
		undoChange(ctx, s.c, Change{Kind: ChangeDir, Path: s.dir(name)})
	} else {
		if err := undoChange(ctx, s.c, Change{Kind: ChangeFile, Path: Service{Name: name}.EnvFile()}); err != nil {
			return s.errorf(name, "remove: %v", err)
		}
		undoChange(ctx, s.c, Change{Kind: ChangeDir, Path: EnvDir}) // when no other service's file is left
	}
	return nil
}

func (s *Services) systemctl(ctx context.Context, verb, name string) error {
	if _, err := rootOutput(ctx, s.c, "systemctl "+verb+" "+ShellQuote("forgelab-"+name+".service")); err != nil {
		return s.errorf(name, "%s: %v", verb, err)
	}
	return nil
}

// aliveFunc defines alive PID: the process exists and is not a zombie
// (an orphan can stay a zombie for a while when init reaps slowly).
const aliveFunc = `alive() { [ -n "$1" ] && s=$(sed 's/.*) //' /proc/"$1"/stat 2>/dev/null) && [ "${s%% *}" != Z ]; }`

// processStopScript stops a supervised service: TERM to its process group,
// KILL after 5 s.
func processStopScript(dir string) string {
	return fmt.Sprintf(`cd -- %s 2>/dev/null || exit 0
[ -f pid ] || exit 0
%s
p=$(cat pid)
if alive "$p"; then
	kill -TERM -"$p" 2>/dev/null
	i=0
	while alive "$p" && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
	kill -KILL -"$p" 2>/dev/null
fi
rm -f pid
`, ShellQuote(dir), aliveFunc)
}

// ServiceStatus is what the manager says about a service.
type ServiceStatus struct {
	Name     string
	Manager  string
	State    string // active | activating | inactive | failed | not-installed | ...
	SubState string
	PID      int
	Restarts int
}

// Active reports whether the service is running.
func (st ServiceStatus) Active() bool { return st.State == "active" }

// Status asks the manager about the service.
func (s *Services) Status(ctx context.Context, name string) (ServiceStatus, error) {
	st := ServiceStatus{Name: name, Manager: s.manager}
	if s.manager == ManagerSystemd {
		out, err := rootOutput(ctx, s.c, "systemctl show -p LoadState -p ActiveState -p SubState -p MainPID -p NRestarts "+ShellQuote("forgelab-"+name+".service"))
		if err != nil {
			return st, s.errorf(name, "status: %v", err)
		}
		kv := parseKV(string(out))
		st.State, st.SubState = kv["ActiveState"], kv["SubState"]
		st.PID, _ = strconv.Atoi(kv["MainPID"])
		st.Restarts, _ = strconv.Atoi(kv["NRestarts"])
		if kv["LoadState"] == "not-found" {
			st.State = "not-installed"
		}
		return st, nil
	}
	script := fmt.Sprintf(`cd -- %s 2>/dev/null || { echo state=not-installed; exit 0; }
%s
p=$(cat pid 2>/dev/null)
if alive "$p"; then echo state=active; echo pid=$p; else echo state=inactive; fi
echo restarts=$(grep -c '^forgelab: starting ' log 2>/dev/null)
`, ShellQuote(s.dir(name)), aliveFunc)
	out, err := rootScript(ctx, s.c, script)
	if err != nil {
		return st, s.errorf(name, "status: %v", err)
	}
	kv := parseKV(string(out))
	st.State = kv["state"]
	st.PID, _ = strconv.Atoi(kv["pid"])
	if n, _ := strconv.Atoi(kv["restarts"]); n > 1 {
		st.Restarts = n - 1
	}
	return st, nil
}

func parseKV(s string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			kv[k] = v
		}
	}
	return kv
}

// Logs writes the service's last lines (lines <= 0: all of them) to w;
// with follow it keeps writing until ctx ends, and then returns nil. An
// empty name means every forgelab service of the host.
func (s *Services) Logs(ctx context.Context, name string, lines int, follow bool, w io.Writer) error {
	var cmd string
	if s.manager == ManagerSystemd {
		unit := ShellQuote("forgelab-" + name + ".service")
		if name == "" {
			unit = "'forgelab-*.service'"
		}
		cmd = "journalctl --no-pager -o short-iso -u " + unit
		if lines > 0 {
			cmd += " -n " + strconv.Itoa(lines)
		}
		if follow {
			cmd += " -f"
		}
	} else {
		cmd = "tail -n +1"
		if lines > 0 {
			cmd = "tail -n " + strconv.Itoa(lines)
		}
		if follow {
			cmd += " -F"
		}
		if name == "" {
			cmd += " -- " + ShellQuote(s.o.RuntimeDir) + "/*/log"
		} else {
			cmd += " -- " + ShellQuote(path.Join(s.dir(name), "log"))
		}
	}
	var stdin io.Reader
	if follow {
		cmd, stdin = untilHangup(ctx, cmd)
	}
	var errb bytes.Buffer
	out, errg := &gate{w: w}, &gate{w: &errb}
	code, err := s.c.Run(ctx, asRoot(s.c, cmd), stdin, out, errg)
	out.close()
	errg.close()
	if err != nil {
		if follow && errors.Is(err, ctx.Err()) {
			return nil
		}
		return s.errorf(name, "logs: %v", err)
	}
	if code != 0 {
		return s.errorf(name, "logs: %s exited with status %d: %s", cmd, code, strings.TrimSpace(errb.String()))
	}
	return nil
}

func (s *Services) logTail(ctx context.Context, name string) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var b bytes.Buffer
	if err := s.Logs(ctx, name, s.o.LogLines, false, &b); err != nil {
		return []string{"(no log: " + err.Error() + ")"}
	}
	text := strings.TrimRight(b.String(), "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// NotReadyError is a service that did not pass its readiness check in time,
// or stopped while it was being waited for.
type NotReadyError struct {
	Host, Service, Check string
	After                time.Duration
	Reason               string   // last check failure, or why the wait ended early
	LogTail              []string // the service's last log lines
}

func (e *NotReadyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "service %s on host %s not ready after %s", e.Service, e.Host, e.After.Round(100*time.Millisecond))
	if e.Check != "" {
		fmt.Fprintf(&b, " (check %s)", e.Check)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	if len(e.LogTail) == 0 {
		b.WriteString("; its log is empty")
		return b.String()
	}
	fmt.Fprintf(&b, "; last %d log lines:", len(e.LogTail))
	for _, l := range e.LogTail {
		b.WriteString("\n    | " + l)
	}
	return b.String()
}

// WaitReady polls the service's readiness check until it passes, the
// service stops for good, or ReadyTimeout passes. Without a check the
// service is ready once it is running.
func (s *Services) WaitReady(ctx context.Context, svc Service) error {
	check, err := readyCommand(svc.Ready)
	if err != nil {
		return err
	}
	start := time.Now()
	deadline := start.Add(svc.readyTimeout())
	fail := func(reason string) error {
		return &NotReadyError{Host: s.o.Host, Service: svc.Name, Check: svc.Ready,
			After: time.Since(start), Reason: reason, LogTail: s.logTail(ctx, svc.Name)}
	}
	var last string
	for {
		st, err := s.Status(ctx, svc.Name)
		if err != nil {
			return err
		}
		switch st.State {
		case "failed", "inactive", "not-installed":
			return fail(fmt.Sprintf("it is %s (last check: %s)", st.State, orNone(last)))
		}
		if check == "" {
			if st.Active() {
				return nil
			}
		} else {
			// A check bounds itself (2 s); the attempt's own limit is a backstop.
			attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := rootOutput(attempt, s.c, check)
			cancel()
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("service %s on host %s: waiting for readiness: %w", svc.Name, s.o.Host, ctx.Err())
			}
			last = checkFailure(err)
		}
		if time.Now().After(deadline) {
			return fail("last check: " + orNone(last))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s on host %s: waiting for readiness: %w", svc.Name, s.o.Host, ctx.Err())
		case <-time.After(s.o.Poll):
		}
	}
}

// Up installs, starts (restarts when it was running) and waits for the
// service: what create does for every service of a host.
func (s *Services) Up(ctx context.Context, svc Service) error {
	if err := s.Install(ctx, svc); err != nil {
		return err
	}
	if err := s.Restart(ctx, svc.Name); err != nil {
		return err
	}
	return s.WaitReady(ctx, svc)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// checkFailure says briefly why a readiness check failed: its exit status
// and the last line it wrote to stderr.
func checkFailure(err error) string {
	var e *ExitError
	if !errors.As(err, &e) {
		return err.Error()
	}
	msg := fmt.Sprintf("exit status %d", e.Code)
	if e.Code == 124 {
		msg = "timed out"
	}
	lines := strings.Split(strings.TrimSpace(e.Stderr), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		msg += ": " + l
	}
	return msg
}

// untilHangup makes a command that runs until stopped (journalctl -f,
// tail -F) end with its SSH session. A closed session kills only the
// session's first process (sudo, which cannot pass SIGKILL on), and a
// follower that prints nothing never notices its reader is gone: so a
// watcher holds the session's stdin, which stays open until ctx ends,
// and kills the command when it reads EOF. The watcher's own output goes
// nowhere, so a command that ends by itself still ends the session.
func untilHangup(ctx context.Context, cmd string) (string, io.Reader) {
	pr, pw := io.Pipe()
	go func() {
		<-ctx.Done()
		pw.Close()
	}()
	return "exec 3<&0; { cat <&3 >/dev/null; kill $$; } >/dev/null 2>&1 & exec 0</dev/null; exec " + cmd, pr
}

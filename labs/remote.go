package labs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/forgelab/forgelab/provision"
)

// Software is how the orchestrator reaches the software side of a lab:
// hosts over SSH, and the lab's background helpers on this machine.
// SSHSoftware is the real one; tests use a fake.
type Software interface {
	// Adopt connects to a physical host and checks it has what forgelab
	// needs. It changes nothing on the host.
	Adopt(ctx context.Context, h provision.PhysicalHost) (Remote, []provision.Check, error)
	// Connect opens a connection to a host of a lab: a VM with the lab's
	// key, a physical host as its lab file says.
	Connect(ctx context.Context, st *State, host string) (Remote, error)
	// StartCoord starts the lab's coordination service listening on every
	// address at one port, and returns the port once it answers. The
	// helper writes pidFile itself and removes it when it ends.
	StartCoord(ctx context.Context, addrs []netip.Addr, pidFile, logFile string) (int, error)
	// StartWorkloads starts the helper that runs the lab's workloads (from
	// the plan in its workloads directory) in the background.
	StartWorkloads(ctx context.Context, lab, pidFile, logFile string) error
}

// Remote is one connection to one host.
type Remote interface {
	Deploy(ctx context.Context, d provision.Deploy, o provision.DeployOptions) (provision.Report, error)
	Services(ctx context.Context, o provision.ServiceOptions) (ServiceManager, error)
	RunWorkload(ctx context.Context, w provision.Workload, outDir string) (provision.WorkloadResult, error)
	// AddNetdev makes a device on the host, journalled (physical hosts).
	AddNetdev(ctx context.Context, j *provision.Journal, dev, script string) error
	// Undo takes back every change in j.
	Undo(ctx context.Context, j *provision.Journal) error
	// LocalAddr is this machine's address as the host sees it; RemoteAddr
	// the host's.
	LocalAddr() netip.Addr
	RemoteAddr() netip.Addr
	Close() error
}

// ServiceManager is the part of provision.Services the orchestrator uses.
type ServiceManager interface {
	Manager() string
	Install(ctx context.Context, svc provision.Service) error
	Restart(ctx context.Context, name string) error
	WaitReady(ctx context.Context, svc provision.Service) error
	Logs(ctx context.Context, name string, lines int, follow bool, w io.Writer) error
}

// SSHSoftware reaches hosts with provision's SSH client and runs the
// helpers as detached processes of a forgelab binary.
type SSHSoftware struct {
	Store *Store
	// Self is the command that runs forgelab's hidden helper commands
	// ("coordd", "workloadd"); nil: this executable with --state-dir.
	Self []string
	// Env is added to the helpers' environment.
	Env []string
}

func (s SSHSoftware) Adopt(ctx context.Context, h provision.PhysicalHost) (Remote, []provision.Check, error) {
	a, err := provision.Adopt(ctx, h, nil)
	if err != nil {
		return nil, nil, err
	}
	return sshRemote{a.Client}, a.Checks, nil
}

func (s SSHSoftware) Connect(ctx context.Context, st *State, host string) (Remote, error) {
	h := st.Plan.Host(host)
	if h == nil {
		return nil, fmt.Errorf("lab %s has no host %q (hosts: %s)", st.Lab, host, hostNames(st.Plan))
	}
	c, err := kindOf(*h).connect(ctx, s.Store, st, *h)
	if err != nil {
		return nil, err
	}
	return sshRemote{c}, nil
}

func (s SSHSoftware) self() ([]string, error) {
	if len(s.Self) > 0 {
		return s.Self, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the forgelab executable: %w", err)
	}
	return []string{exe, "--state-dir", s.Store.Dir}, nil
}

// launch starts a helper in a session of its own (so neither the CLI
// ending nor a Ctrl-C in its terminal stops it) and waits until ready
// says it is up, or it exits.
func (s SSHSoftware) launch(ctx context.Context, args []string, logFile string, ready func() error) error {
	self, err := s.self()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self[0], append(append([]string{}, self[1:]...), args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", args[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reap it if it ends while we live
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case werr := <-exited:
			if args[0] == "workloadd" && werr == nil {
				return nil // done already
			}
			return fmt.Errorf("%s exited (%v): %s", args[0], werr, fileTail(logFile, 2000))
		case <-ctx.Done():
			cmd.Process.Kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return fmt.Errorf("%s did not start within 15s (%v): %s", args[0], err, fileTail(logFile, 2000))
		}
	}
}

// StartCoord picks a port free on every address (7070 if it can), starts
// `forgelab coordd` on them and waits for it to answer.
func (s SSHSoftware) StartCoord(ctx context.Context, addrs []netip.Addr, pidFile, logFile string) (int, error) {
	port, err := freePort(addrs, 7070)
	if err != nil {
		return 0, err
	}
	args := []string{"coordd", "--pid-file", pidFile}
	for _, a := range addrs {
		args = append(args, "--listen", netip.AddrPortFrom(a, uint16(port)).String())
	}
	url := "http://" + netip.AddrPortFrom(addrs[0], uint16(port)).String() + "/healthz"
	hc := &http.Client{Timeout: time.Second}
	err = s.launch(ctx, args, logFile, func() error {
		if _, err := os.Stat(pidFile); err != nil {
			return err
		}
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("coordination service: %w", err)
	}
	return port, nil
}

func (s SSHSoftware) StartWorkloads(ctx context.Context, lab, pidFile, logFile string) error {
	err := s.launch(ctx, []string{"workloadd", "--pid-file", pidFile, lab}, logFile, func() error {
		_, err := os.Stat(pidFile)
		return err
	})
	if err != nil {
		return fmt.Errorf("workload runner: %w", err)
	}
	return nil
}

// freePort finds a port that can be bound on every address, trying
// prefer..prefer+99 and then ports the kernel picks.
func freePort(addrs []netip.Addr, prefer int) (int, error) {
	try := func(port int) (int, bool) {
		var lns []net.Listener
		defer func() {
			for _, l := range lns {
				l.Close()
			}
		}()
		for _, a := range addrs {
			ln, err := net.Listen("tcp", netip.AddrPortFrom(a, uint16(port)).String())
			if err != nil {
				return 0, false
			}
			lns = append(lns, ln)
			if port == 0 {
				port = ln.Addr().(*net.TCPAddr).Port
			}
		}
		return port, true
	}
	for p := prefer; p < prefer+100; p++ {
		if port, ok := try(p); ok {
			return port, nil
		}
	}
	for range 20 {
		if port, ok := try(0); ok {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no TCP port free on every one of %v", addrs)
}

func fileTail(path string, n int) string {
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

// sshRemote is a Remote over a provision.Client.
type sshRemote struct{ c *provision.Client }

func (r sshRemote) Deploy(ctx context.Context, d provision.Deploy, o provision.DeployOptions) (provision.Report, error) {
	return r.c.Deploy(ctx, d, o)
}

func (r sshRemote) Services(ctx context.Context, o provision.ServiceOptions) (ServiceManager, error) {
	return provision.NewServices(ctx, r.c, o)
}

func (r sshRemote) RunWorkload(ctx context.Context, w provision.Workload, outDir string) (provision.WorkloadResult, error) {
	return provision.RunWorkload(ctx, r.c, w, outDir)
}

func (r sshRemote) AddNetdev(ctx context.Context, j *provision.Journal, dev, script string) error {
	return provision.AddNetdev(ctx, r.c, j, dev, script)
}

func (r sshRemote) Undo(ctx context.Context, j *provision.Journal) error {
	return provision.Undo(ctx, r.c, j)
}

// RootOutput runs a command as root on the host and returns its stdout
// (the run's /proc sampler and the quiet-environment check).
func (r sshRemote) RootOutput(ctx context.Context, cmd string) ([]byte, error) {
	return provision.RootOutput(ctx, r.c, cmd)
}

// RootStream runs a command as root on the host, its stdout to w, until
// it ends or ctx does (the run's /proc sampler loop).
func (r sshRemote) RootStream(ctx context.Context, cmd string, w io.Writer) error {
	var errb bytes.Buffer
	code, err := r.c.Run(ctx, provision.AsRoot(r.c, cmd), nil, w, &errb)
	if err != nil {
		return err
	}
	if code != 0 && ctx.Err() == nil {
		return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(errb.String()))
	}
	return nil
}

func (r sshRemote) LocalAddr() netip.Addr  { return tcpAddr(r.c.LocalAddr()) }
func (r sshRemote) RemoteAddr() netip.Addr { return tcpAddr(r.c.RemoteAddr()) }
func (r sshRemote) Close() error           { return r.c.Close() }

func tcpAddr(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		if ap := t.AddrPort(); ap.IsValid() {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// WritePIDFile is for the helpers: it writes this process's pid to path
// (atomically) and returns a function that removes it again.
func WritePIDFile(path string) (func(), error) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return func() { os.Remove(path) }, nil
}

// software returns the Software in use.
func (m *Manager) software() Software {
	if m.Software != nil {
		return m.Software
	}
	return SSHSoftware{Store: m.Store}
}

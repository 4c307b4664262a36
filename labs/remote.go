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
	"strconv"
	"strings"
	"time"

	"github.com/forgelab/forgelab/internal/proc"
	"github.com/forgelab/forgelab/provision"
	"github.com/forgelab/forgelab/provision/coord"
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
	// address (and nowhere else) at one port, answering requests that
	// carry token, and returns the port once it answers. pidFile names
	// the helper for destroy.
	StartCoord(ctx context.Context, addrs []netip.Addr, token, pidFile, logFile string) (int, error)
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

// launch starts a helper (package proc: its own session, a pid file that
// destroy trusts only for this very process).
func (s SSHSoftware) launch(ctx context.Context, c proc.Cmd) error {
	self, err := s.self()
	if err != nil {
		return err
	}
	c.Argv = append(append([]string{}, self...), c.Argv...)
	c.Env = append(append([]string{}, s.Env...), c.Env...)
	_, err = proc.Start(ctx, c)
	return err
}

// StartCoord binds one port on every address (7070 if it can) and hands
// the sockets to `forgelab coordd`, so nothing else can take the port in
// between; the token goes through the environment, out of ps' sight.
func (s SSHSoftware) StartCoord(ctx context.Context, addrs []netip.Addr, token, pidFile, logFile string) (int, error) {
	lns, port, err := coord.Listen(addrs, 7070)
	if err != nil {
		return 0, err
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, ln := range lns {
		f, err := ln.File() // a duplicate: the child's own
		ln.Close()
		if err != nil {
			return 0, fmt.Errorf("coordination service: %w", err)
		}
		files = append(files, f)
	}
	url := "http://" + netip.AddrPortFrom(addrs[0], uint16(port)).String() + "/healthz"
	hc := &http.Client{Timeout: time.Second}
	err = s.launch(ctx, proc.Cmd{
		Argv:  []string{"coordd", "--pid-file", pidFile, "--fds", strconv.Itoa(len(files))},
		Env:   []string{CoordTokenEnv + "=" + token},
		Files: files, Log: logFile, PIDFile: pidFile,
		Ready: func(int) error {
			resp, err := hc.Get(url)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return errors.New(resp.Status)
			}
			return nil
		},
	})
	if err != nil {
		return 0, fmt.Errorf("coordination service: %w", err)
	}
	return port, nil
}

func (s SSHSoftware) StartWorkloads(ctx context.Context, lab, pidFile, logFile string) error {
	err := s.launch(ctx, proc.Cmd{Argv: []string{"workloadd", "--pid-file", pidFile, lab}, Log: logFile, PIDFile: pidFile})
	if err != nil {
		return fmt.Errorf("workload runner: %w", err)
	}
	return nil
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

// ReleasePIDFile is for the helpers, at their end: it removes the pid
// file launch wrote when it still names this process.
func ReleasePIDFile(path string) { proc.RemoveIfSelf(path) }

// software returns the Software in use.
func (m *Manager) software() Software {
	if m.Software != nil {
		return m.Software
	}
	return SSHSoftware{Store: m.Store}
}

package labs

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/netfabric/userspace"
	"github.com/forgelab/forgelab/provision"
)

// SSHTarget says how to reach a lab host over its management address with
// the lab's key, verifying the host key forgelab generated for it.
func sshTarget(s *Store, st *State, host string) (provision.Target, error) {
	if st.Plan == nil {
		return provision.Target{}, fmt.Errorf("lab %s has no plan in its state", st.Lab)
	}
	h := st.Plan.Host(host)
	if h == nil {
		return provision.Target{}, fmt.Errorf("lab %s has no host %q (hosts: %s)", st.Lab, host, hostNames(st.Plan))
	}
	return kindOf(*h).target(s, st, *h)
}

// dial opens an SSH connection to a ready lab host.
func dial(ctx context.Context, s *Store, st *State, host string) (*provision.Client, error) {
	t, err := sshTarget(s, st, host)
	if err != nil {
		return nil, err
	}
	c, err := provision.Dial(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("ssh to %s/%s (%s): %w", st.Lab, host, t.Addr, err)
	}
	return c, nil
}

func hostNames(p *Plan) string {
	s := ""
	for i, h := range p.Hosts {
		if i > 0 {
			s += ", "
		}
		s += h.Name
	}
	return s
}

// SSHWaiter waits until a host accepts the lab key over SSH.
type SSHWaiter struct {
	Store *Store
	Poll  time.Duration
}

func (w SSHWaiter) WaitReady(ctx context.Context, st *State, host string) error {
	t, err := sshTarget(w.Store, st, host)
	if err != nil {
		return err
	}
	poll := w.Poll
	if poll == 0 {
		poll = 250 * time.Millisecond
	}
	c, err := provision.WaitSSH(ctx, t, poll)
	if err != nil {
		return err
	}
	return c.Close()
}

// SSHArgs are ssh(1)'s options and destination that log a person into a
// lab host as forgelab reaches it (the lab's key and known_hosts for a
// VM; a physical host's own key, port and known_hosts).
func (m *Manager) SSHArgs(st *State, host string) ([]string, error) {
	return sshArgs(m.Store, st, host)
}

func sshArgs(s *Store, st *State, host string) ([]string, error) {
	if st.Plan == nil {
		return nil, fmt.Errorf("lab %s has no plan in its state", st.Lab)
	}
	h := st.Plan.Host(host)
	if h == nil {
		return nil, fmt.Errorf("lab %s has no host %q (hosts: %s)", st.Lab, host, hostNames(st.Plan))
	}
	return kindOf(*h).sshArgs(s, st, *h)
}

// Dial opens an SSH connection to a ready lab host, for `forgelab exec`.
func (m *Manager) Dial(ctx context.Context, st *State, host string) (*provision.Client, error) {
	return dial(ctx, m.Store, st, host)
}

// Console attaches in and out to a VM's serial console until the user
// leaves (Ctrl-]), the VM stops, or ctx ends.
func (m *Manager) Console(ctx context.Context, st *State, host string, in *os.File, out io.Writer) error {
	h, err := vmHost(st, host)
	if err != nil {
		return err
	}
	return m.VMs.Console(ctx, h.Domain, in, out)
}

// SerialLog is the file a VM's serial console is logged to.
func (m *Manager) SerialLog(st *State, host string) (string, error) {
	if _, err := vmHost(st, host); err != nil {
		return "", err
	}
	return m.Store.LayoutOf(st).SerialLog(host), nil
}

// ConsolePassword is the file that holds the password for serial-console
// logins.
func (m *Manager) ConsolePassword(st *State) string { return m.Store.LayoutOf(st).Password() }

// AccelChoice is the accelerator create uses, and why.
type AccelChoice struct {
	Accel  hypervisor.Accel
	Reason string
	// Warning is about /dev/kvm, for people; "" when all is well.
	Warning string
}

// ChooseAccel turns --accel (kvm, tcg or auto) into an accelerator, and
// checks that QEMU is there to use it.
func ChooseAccel(flag string) (AccelChoice, error) {
	accel, forced, err := hypervisor.ParseAccel(flag)
	if err != nil {
		return AccelChoice{}, err
	}
	c := AccelChoice{Accel: accel, Reason: "forced with --accel"}
	if !forced {
		c.Accel, c.Reason = hypervisor.DetectAccel(hypervisor.DefaultProbe())
	}
	c.Warning = hypervisor.CheckKVMDevice("/dev/kvm")
	return c, hypervisor.CheckQEMU()
}

// ServeFabric runs a lab's userspace link fabric until ctx ends: the body
// of the hidden `forgelab fabricd` that create starts.
func ServeFabric(ctx context.Context, configPath, socket string) error {
	cfg, err := userspace.LoadConfig(configPath)
	if err != nil {
		return err
	}
	return userspace.Serve(ctx, cfg, socket)
}

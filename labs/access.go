package labs

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/forgelab/forgelab/provision"
)

// SSHTarget says how to reach a lab host over its management address with
// the lab's key, verifying the host key forgelab generated for it.
func (s *Store) SSHTarget(st *State, host string) (provision.Target, error) {
	if st.Plan == nil {
		return provision.Target{}, fmt.Errorf("lab %s has no plan in its state", st.Lab)
	}
	h := st.Plan.Host(host)
	if h == nil {
		return provision.Target{}, fmt.Errorf("lab %s has no host %q (hosts: %s)", st.Lab, host, hostNames(st.Plan))
	}
	if h.Kind == "physical" {
		ph, err := physicalHost(s, st, *h, false)
		if err != nil {
			return provision.Target{}, err
		}
		return ph.Target()
	}
	dir := s.LabDir(st.Lab)
	signer, err := provision.LoadSigner(filepath.Join(dir, KeyFile))
	if err != nil {
		return provision.Target{}, err
	}
	cb, err := provision.HostKeyCallback(filepath.Join(dir, KnownHostsFile))
	if err != nil {
		return provision.Target{}, err
	}
	return provision.Target{
		Addr: net.JoinHostPort(h.MgmtIP.String(), "22"), User: st.User,
		Signer: signer, HostKey: cb,
		// forgelab gives each VM exactly one host key, an ed25519 one.
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
	}, nil
}

// Dial opens an SSH connection to a ready lab host.
func (s *Store) Dial(ctx context.Context, st *State, host string) (*provision.Client, error) {
	t, err := s.SSHTarget(st, host)
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
	t, err := w.Store.SSHTarget(st, host)
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

package labs

import (
	"context"
	"net"
	"net/netip"

	"golang.org/x/crypto/ssh"

	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/provision"
)

// hostKind is what the orchestrator does differently for each kind of
// host. Each kind of the lab file is one type in hostKinds; nothing else
// in the orchestrator looks at a host's kind, so a new kind (a router, a
// host behind NAT, a remote worker's VM) is one new type.
type hostKind interface {
	// madeHere reports whether forgelab makes the host on this machine
	// (a libvirt domain): it then needs memory and an image here, gets a
	// host key, a management lease and taps from forgelab, and takes
	// power actions. A host not made here is adopted: every change
	// forgelab makes on it is journalled and undone by destroy.
	madeHere() bool
	// prepareLinks makes this machine's end of the host's links before
	// the link fabric starts (taps are made for hosts made here).
	prepareLinks(ctx context.Context, m *Manager, rec *Recorder, i int) error
	// join brings host i into the lab (boots it, adopts it) and returns
	// once it answers SSH.
	join(ctx context.Context, m *Manager, rec *Recorder, i int, k *labKeys, opts CreateOptions) error
	// target is how forgelab reaches the host over SSH.
	target(s *Store, st *State, h HostPlan) (provision.Target, error)
	// connect opens a connection for deploys, services and workloads.
	connect(ctx context.Context, s *Store, st *State, h HostPlan) (*provision.Client, error)
	// sshArgs are ssh(1)'s options and destination for a person's login.
	sshArgs(s *Store, st *State, h HostPlan) ([]string, error)
	// mgmtAddr is the host's address as the lab's templates see it.
	mgmtAddr(h HostPlan) netip.Addr
}

// hostKinds maps the lab file's host kinds to their types.
var hostKinds = map[string]hostKind{
	spec.KindVM:       vmKind{},
	spec.KindPhysical: physicalKind{},
}

// kindOf is a host's kind.
func kindOf(h HostPlan) hostKind { return kindNamed(h.Kind) }

// kindNamed is the kind the lab file names. The lab file admits only
// known kinds, and "" (a host of a state saved before kinds were spelled
// out) is a VM.
func kindNamed(name string) hostKind {
	if k, ok := hostKinds[name]; ok {
		return k
	}
	return vmKind{}
}

// kindName is a host's kind as the lab file names it.
func kindName(kind string) string {
	if kind == "" {
		return spec.KindVM
	}
	return kind
}

// vmKind is a VM forgelab boots under libvirt.
type vmKind struct{}

func (vmKind) madeHere() bool { return true }

func (vmKind) prepareLinks(context.Context, *Manager, *Recorder, int) error { return nil }

func (vmKind) join(ctx context.Context, m *Manager, rec *Recorder, i int, k *labKeys, opts CreateOptions) error {
	return m.bootHost(ctx, rec, rec.State().Plan, i, k, opts)
}

func (vmKind) target(s *Store, st *State, h HostPlan) (provision.Target, error) {
	l := s.LayoutOf(st)
	signer, err := provision.LoadSigner(l.Key())
	if err != nil {
		return provision.Target{}, err
	}
	cb, err := provision.HostKeyCallback(l.KnownHosts())
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

func (k vmKind) connect(ctx context.Context, s *Store, st *State, h HostPlan) (*provision.Client, error) {
	return dial(ctx, s, st, h.Name)
}

func (vmKind) sshArgs(s *Store, st *State, h HostPlan) ([]string, error) {
	l := s.LayoutOf(st)
	return []string{"-i", l.Key(),
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + l.KnownHosts(),
		"-o", "StrictHostKeyChecking=yes",
		st.User + "@" + h.MgmtIP.String()}, nil
}

func (vmKind) mgmtAddr(h HostPlan) netip.Addr { return h.MgmtIP }

// physicalKind is a machine forgelab adopts over SSH (physical.go).
type physicalKind struct{}

func (physicalKind) madeHere() bool { return false }

func (physicalKind) prepareLinks(ctx context.Context, m *Manager, rec *Recorder, i int) error {
	return m.prepareTunnels(ctx, rec, i)
}

func (physicalKind) join(ctx context.Context, m *Manager, rec *Recorder, i int, k *labKeys, opts CreateOptions) error {
	return m.adoptHost(ctx, rec, i)
}

func (physicalKind) target(s *Store, st *State, h HostPlan) (provision.Target, error) {
	ph, err := physicalHost(s, st, h, false)
	if err != nil {
		return provision.Target{}, err
	}
	return ph.Target()
}

func (physicalKind) connect(ctx context.Context, s *Store, st *State, h HostPlan) (*provision.Client, error) {
	ph, err := physicalHost(s, st, h, false)
	if err != nil {
		return nil, err
	}
	return provision.ConnectPhysical(ctx, ph)
}

func (physicalKind) sshArgs(s *Store, st *State, h HostPlan) ([]string, error) {
	return physicalSSHArgs(s, st, h)
}

func (physicalKind) mgmtAddr(h HostPlan) netip.Addr {
	if h.SSH != nil {
		if a, err := netip.ParseAddr(h.SSH.Address); err == nil {
			return a
		}
	}
	return h.MgmtIP
}

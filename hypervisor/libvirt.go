package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
)

// DefaultURI is the system libvirt daemon; lab VMs need its networking.
const DefaultURI = "qemu:///system"

// Conn is a connection to libvirtd.
type Conn struct {
	v     virt
	clock clock
	// raw is the connection itself, for console streams (not behind
	// virt: they are exercised by the end-to-end tests).
	raw *libvirt.Connect
	// callTimeout bounds each libvirt operation (bound.go); 0: the default.
	callTimeout time.Duration
}

// SetCallTimeout changes how long one libvirt operation may take before
// forgelab gives up on libvirtd (DefaultCallTimeout when d <= 0).
func (c *Conn) SetCallTimeout(d time.Duration) { c.callTimeout = d }

// Connect opens uri and turns the usual failures into advice.
func Connect(uri string) (*Conn, error) {
	if uri == "" {
		uri = DefaultURI
	}
	c, err := libvirt.NewConnect(uri)
	if err != nil {
		return nil, fmt.Errorf("connect to libvirt at %s: %w (%s)", uri, err, connectAdvice())
	}
	return &Conn{v: libvirtConn{c}, clock: realClock{}, raw: c}, nil
}

func connectAdvice() string {
	if _, err := exec.LookPath("libvirtd"); err != nil {
		return "libvirt is not installed: apt-get install libvirt-daemon-system qemu-system-x86 qemu-utils"
	}
	return "libvirtd is not running: start it with `virtlogd -d && libvirtd -d` (or `systemctl start libvirtd`)"
}

// CheckQEMU says how to fix a missing QEMU before any domain is defined.
func CheckQEMU() error {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return errors.New("qemu-system-x86_64 not found: apt-get install qemu-system-x86 qemu-utils")
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return errors.New("qemu-img not found: apt-get install qemu-utils")
	}
	return nil
}

func (c *Conn) Close() error {
	return c.bounded(context.Background(), "close libvirt connection", c.v.close)
}

// ErrExists says a domain or network of that name exists already: made
// by someone else, so the caller must not remove it.
var ErrExists = errors.New("a libvirt object of that name already exists")

// existsError wraps a define's error, as ErrExists when the name is taken
// (libvirt 9 says so with OPERATION_FAILED "... already exists with uuid").
func existsError(what string, err error) error {
	var lerr libvirt.Error
	if errors.As(err, &lerr) && (lerr.Code == libvirt.ERR_DOM_EXIST || lerr.Code == libvirt.ERR_NETWORK_EXIST ||
		lerr.Code == libvirt.ERR_OPERATION_FAILED && strings.Contains(lerr.Message, "already exists")) {
		return fmt.Errorf("%s: %w (%w)", what, ErrExists, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isNotFound(err error, code libvirt.ErrorNumber) bool {
	var lerr libvirt.Error
	return errors.As(err, &lerr) && lerr.Code == code
}

// StartDomain defines and starts a domain from cfg. A domain left defined
// by a failed start is undefined again, so the caller's record stays true.
func (c *Conn) StartDomain(ctx context.Context, cfg DomainConfig) error {
	xml, err := DomainXML(cfg)
	if err != nil {
		return err
	}
	return c.bounded(ctx, "start domain "+cfg.Name, func() error {
		dom, err := c.v.defineDomain(xml)
		if err != nil {
			return existsError("define domain "+cfg.Name, err)
		}
		defer dom.free()
		if err := dom.create(); err != nil {
			if uerr := dom.undefine(); uerr != nil {
				return fmt.Errorf("start domain %s: %w (and undefining it failed: %v; run `virsh undefine %s`)", cfg.Name, err, uerr, cfg.Name)
			}
			return fmt.Errorf("start domain %s: %w", cfg.Name, err)
		}
		return nil
	})
}

// RemoveDomain stops and undefines a domain. A domain that does not exist
// is not an error: destroy runs again after a crash.
func (c *Conn) RemoveDomain(ctx context.Context, name string) error {
	return c.bounded(ctx, "remove domain "+name, func() error { return c.removeDomain(name) })
}

func (c *Conn) removeDomain(name string) error {
	dom, err := c.v.lookupDomain(name)
	if err != nil {
		if isNotFound(err, libvirt.ERR_NO_DOMAIN) {
			return nil
		}
		return fmt.Errorf("look up domain %s: %w", name, err)
	}
	defer dom.free()
	if dom.isActive() {
		if err := dom.destroy(); err != nil && !isNotFound(err, libvirt.ERR_OPERATION_INVALID) {
			return fmt.Errorf("stop domain %s: %w", name, err)
		}
	}
	if err := dom.undefine(); err != nil && !isNotFound(err, libvirt.ERR_NO_DOMAIN) {
		return fmt.Errorf("undefine domain %s: %w", name, err)
	}
	return nil
}

// DomainState is a short word for a domain's state, "absent" when missing.
func (c *Conn) DomainState(name string) (string, error) {
	return boundedValue(context.Background(), c, "state of domain "+name, func() (string, error) { return c.domainState(name) })
}

func (c *Conn) domainState(name string) (string, error) {
	dom, err := c.v.lookupDomain(name)
	if err != nil {
		if isNotFound(err, libvirt.ERR_NO_DOMAIN) {
			return "absent", nil
		}
		return "", fmt.Errorf("look up domain %s: %w", name, err)
	}
	defer dom.free()
	st, err := dom.state()
	if err != nil {
		return "", fmt.Errorf("state of domain %s: %w", name, err)
	}
	return stateWord(st), nil
}

func stateWord(st libvirt.DomainState) string {
	switch st {
	case libvirt.DOMAIN_RUNNING:
		return "running"
	case libvirt.DOMAIN_BLOCKED:
		return "blocked"
	case libvirt.DOMAIN_PAUSED:
		return "paused"
	case libvirt.DOMAIN_SHUTDOWN:
		return "shutting-down"
	case libvirt.DOMAIN_SHUTOFF:
		return "shut-off"
	case libvirt.DOMAIN_CRASHED:
		return "crashed"
	case libvirt.DOMAIN_PMSUSPENDED:
		return "suspended"
	}
	return "unknown"
}

// DomainPID returns the QEMU process id of a running domain, read from
// libvirt's pid file, so boot CPU can be measured.
func DomainPID(name string) (int, error) {
	data, err := os.ReadFile("/run/libvirt/qemu/" + name + ".pid")
	if err != nil {
		return 0, err
	}
	var pid int
	_, err = fmt.Sscanf(strings.TrimSpace(string(data)), "%d", &pid)
	return pid, err
}

// QEMULog returns the tail of libvirt's QEMU log for a domain (QEMU's own
// stderr: accelerator failures show up here, not on the serial console).
func QEMULog(name string, maxBytes int) string {
	return tailFile("/var/log/libvirt/qemu/"+name+".log", maxBytes)
}

func tailFile(path string, maxBytes int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - int64(maxBytes)
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(buf, off)
	return string(buf[:n])
}

// TailFile returns at most maxBytes from the end of a file ("" if absent).
func TailFile(path string, maxBytes int) string { return tailFile(path, maxBytes) }

// StartNetwork defines and starts a NAT network.
func (c *Conn) StartNetwork(ctx context.Context, n NATNetwork) error {
	xml, err := NetworkXML(n)
	if err != nil {
		return err
	}
	return c.bounded(ctx, "start network "+n.Name, func() error {
		net, err := c.v.defineNetwork(xml)
		if err != nil {
			return existsError("define network "+n.Name, err)
		}
		defer net.free()
		if err := net.create(); err != nil {
			net.undefine()
			return fmt.Errorf("start network %s: %w", n.Name, err)
		}
		return nil
	})
}

// RemoveNetwork stops and undefines a network; missing is not an error.
func (c *Conn) RemoveNetwork(ctx context.Context, name string) error {
	return c.bounded(ctx, "remove network "+name, func() error { return c.removeNetwork(name) })
}

func (c *Conn) removeNetwork(name string) error {
	net, err := c.v.lookupNetwork(name)
	if err != nil {
		if isNotFound(err, libvirt.ERR_NO_NETWORK) {
			return nil
		}
		return fmt.Errorf("look up network %s: %w", name, err)
	}
	defer net.free()
	if net.isActive() {
		if err := net.destroy(); err != nil {
			return fmt.Errorf("stop network %s: %w", name, err)
		}
	}
	if err := net.undefine(); err != nil && !isNotFound(err, libvirt.ERR_NO_NETWORK) {
		return fmt.Errorf("undefine network %s: %w", name, err)
	}
	return nil
}

// NetworkXMLs returns the XML of all defined libvirt networks (so a
// new lab's management subnet can avoid them).
func (c *Conn) NetworkXMLs() ([]string, error) {
	out, err := boundedValue(context.Background(), c, "list networks", c.v.networkXMLs)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return out, nil
}

// Shutdown asks the guest to power off (ACPI), then kills it after grace.
func (c *Conn) Shutdown(ctx context.Context, name string, grace time.Duration) error {
	dom, err := boundedValue(ctx, c, "look up domain "+name, func() (domain, error) { return c.v.lookupDomain(name) })
	if err != nil {
		return fmt.Errorf("look up domain %s: %w", name, err)
	}
	defer dom.free()
	return c.shutdown(ctx, name, dom, grace)
}

func (c *Conn) shutdown(ctx context.Context, name string, dom domain, grace time.Duration) error {
	if err := c.bounded(ctx, "shut down domain "+name, dom.shutdown); err != nil {
		return fmt.Errorf("shut down domain %s: %w", name, err)
	}
	active := func() (bool, error) {
		return boundedValue(ctx, c, "state of domain "+name, func() (bool, error) { return dom.isActive(), nil })
	}
	deadline := c.clock.Now().Add(grace)
	for c.clock.Now().Before(deadline) {
		if a, err := active(); err != nil {
			return err
		} else if !a {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.clock.After(200 * time.Millisecond):
		}
	}
	// The guest ignored ACPI (no acpid, or hung): pull the plug.
	if err := c.bounded(ctx, "stop domain "+name, dom.destroy); err != nil {
		return fmt.Errorf("stop domain %s after %s: %w", name, grace, err)
	}
	return nil
}

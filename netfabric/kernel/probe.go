package kernel

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNoNetem says the kernel cannot run netem.
var ErrNoNetem = errors.New("this kernel has no sch_netem")

// HasNetem tries a netem qdisc on the loopback device of a throwaway
// network namespace, so the probe touches nothing of the host. It returns
// nil when netem works, ErrNoNetem (wrapped) when the kernel lacks it, or
// another error when the probe itself could not run (no root). The
// orchestrator uses it for fabric = "auto".
func HasNetem() error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("probe netem: %w", err)
	}
	defer orig.Close()
	ns, err := netns.New() // creates the namespace and enters it
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("probe netem: new network namespace (needs root): %w", err)
	}
	probeErr := probeIn(ns)
	ns.Close() // last reference: the namespace goes away
	if err := netns.Set(orig); err != nil {
		// This thread is stuck in the wrong namespace: keep it locked, so
		// Go retires it instead of running other goroutines on it.
		return fmt.Errorf("probe netem: return to the host namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return probeErr
}

func probeIn(ns netns.NsHandle) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("probe netem: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("probe netem: %w", err)
	}
	q := &netlink.Netem{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: lo.Attrs().Index, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)}, Limit: 1000, Latency: 1000}
	err = h.QdiscAdd(q)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("%w (load it with `modprobe sch_netem`, or use fabric = userspace)", ErrNoNetem)
	default:
		return fmt.Errorf("probe netem: %w", err)
	}
}

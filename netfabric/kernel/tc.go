package kernel

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric"
)

// The traffic control layout forgelab puts on a lab NIC's tap T (the
// host-side end of a VM's NIC) and its helper ifb device I:
//
//	T clsact ingress (frames the VM sends):
//	  prio 1  cls_bpf "drop all"        while the link or this direction is down
//	  prio 2  u32 any -> mirred to I    while this direction is shaped
//	T clsact egress (frames toward the VM):
//	  prio 3  cls_bpf "drop from MACs"  while a partition separates hosts from it
//	I root (what the VM sends, shaped, then back into T's ingress):
//	  delay, loss and the like (with or without rate): netem 1:, which
//	                           also carries the rate
//	  rate alone:              htb 1: -> class 1:1 (rate) -> leaf 10: pfifo
//
// Shaping the sending side's ingress makes "traffic leaving host X" one
// queue, for point-to-point links and segments alike, and leaves each
// direction independent. Nothing is attached to a direction without
// impairment, so an unimpaired link is a plain bridge. netem's own rate
// (what Mininet-WiFi's tc mode uses) makes a change of rate and delay one
// request, where htb with netem under it took two: a schedule's changes
// cost half the kernel work. htb stays for rate alone, which hosts
// without sch_netem can do.
const (
	prioDown      = 1
	prioRedirect  = 2
	prioPartition = 3
)

var (
	htbRoot   = netlink.MakeHandle(1, 0)
	htbClass  = netlink.MakeHandle(1, 1)
	leafQdisc = netlink.MakeHandle(10, 0)
)

// conn is the sockets a Shaper sends its requests on: opening a socket
// per request (what the package-level netlink calls do) cost more than
// the request itself in a TCG guest. The zero conn opens a socket per
// request, as the careful paths, which run rarely, still do.
type conn struct {
	h   *netlink.Handle  // library requests; nil: a socket per request
	raw *nl.SocketHandle // requests built here; nil: a socket per request
	ioc int              // for SIOCGIFINDEX; 0: none (netlink instead)
}

// dial opens a conn; on failure the zero conn still works.
func dial() conn {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return conn{}
	}
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return conn{}
	}
	c := conn{h: h, raw: &nl.SocketHandle{Socket: s}}
	if fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err == nil {
		c.ioc = fd
	}
	return c
}

func (c conn) close() {
	if c.h != nil {
		c.h.Close()
	}
	if c.raw != nil {
		c.raw.Close()
	}
	if c.ioc > 0 {
		unix.Close(c.ioc)
	}
}

// ifindex is the index of device name. An ioctl asks the kernel for the
// index alone, where a netlink link request has it build the device's
// whole description with its statistics: under TCG that was a fifth of
// a change's CPU.
func (c conn) ifindex(name string) (int, error) {
	if c.ioc <= 0 {
		l, err := c.linkByName(name)
		if err != nil {
			return 0, err
		}
		return l.Attrs().Index, nil
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("device %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(c.ioc, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("device %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

func (c conn) handle() *netlink.Handle {
	if c.h == nil {
		return &netlink.Handle{} // what the package-level calls use
	}
	return c.h
}

// execute sends a request built here, on c's socket if it has one.
func (c conn) execute(req *nl.NetlinkRequest) error {
	if c.raw != nil {
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: c.raw}
	}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

func (c conn) linkByName(name string) (netlink.Link, error) {
	l, err := c.handle().LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", name, err)
	}
	return l, nil
}

// ifbName is the helper device of a tap: the tap's name plus "i".
func ifbName(tap string) (string, error) {
	n := tap + "i"
	if len(n) > 15 {
		return "", fmt.Errorf("tap name %q too long to derive its ifb name (at most 14 characters)", tap)
	}
	return n, nil
}

func linkByName(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", name, err)
	}
	return l, nil
}

// notFound: deleting what is not there (a qdisc already gone, or the
// default root qdisc, which the kernel refuses to delete with EINVAL).
func notFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL)
}

// ensureClsact gives a tap its clsact qdisc.
func ensureClsact(tap netlink.Link) error {
	// Add, and take "exists" for done: asking first would mean a qdisc
	// dump, which lists every device's qdiscs, so every change of a big
	// lab would pay for the whole lab.
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: tap.Attrs().Index, Parent: netlink.HANDLE_CLSACT, Handle: netlink.MakeHandle(0xffff, 0)}}
	if err := netlink.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s: add clsact: %w", tap.Attrs().Name, err)
	}
	return nil
}

// hasFilter reports whether a filter of ours sits at prio on that hook.
func hasFilter(l netlink.Link, parent uint32, prio uint16) (netlink.Filter, error) {
	fs, err := netlink.FilterList(l, parent)
	if err != nil {
		return nil, fmt.Errorf("%s: list filters: %w", l.Attrs().Name, err)
	}
	for _, f := range fs {
		if f.Attrs().Priority == prio {
			return f, nil
		}
	}
	return nil, nil
}

// delFilters removes every filter at prio on that hook, whatever its
// kind (no TCA_KIND in the request); none there is fine.
func delFilters(l netlink.Link, parent uint32, prio uint16) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELTFILTER, unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{
		Family:  nl.FAMILY_ALL,
		Ifindex: int32(l.Attrs().Index),
		Parent:  parent,
		Info:    netlink.MakeHandle(prio, htons(unix.ETH_P_ALL)),
	})
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if has, lerr := hasClsact(l); lerr == nil && !has {
		return nil // no clsact, so no filters ("Parent Qdisc doesn't exist")
	}
	return fmt.Errorf("%s: delete filter prio %d: %w", l.Attrs().Name, prio, err)
}

func hasClsact(l netlink.Link) (bool, error) {
	qs, err := netlink.QdiscList(l)
	if err != nil {
		return false, fmt.Errorf("%s: list qdiscs: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		if q.Type() == "clsact" {
			return true, nil
		}
	}
	return false, nil
}

// setBPFDrop puts (or replaces) a drop program at prio on a hook.
func setBPFDrop(l netlink.Link, parent uint32, prio uint16, prog []insn, name string) error {
	fd, err := loadProgram(prog, name)
	if err != nil {
		return fmt.Errorf("%s: %w", l.Attrs().Name, err)
	}
	defer unix.Close(fd) // the filter keeps its own reference
	f := &netlink.BpfFilter{
		FilterAttrs:  netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: parent, Priority: prio, Protocol: unix.ETH_P_ALL, Handle: 1},
		Fd:           fd,
		Name:         name,
		DirectAction: true,
	}
	if err := netlink.FilterReplace(f); err != nil {
		return fmt.Errorf("%s: add drop filter: %w", l.Attrs().Name, err)
	}
	return nil
}

// setDown makes a tap drop (or stop dropping) everything its VM sends.
func setDown(tap netlink.Link, down bool) error {
	if !down {
		return delFilters(tap, netlink.HANDLE_MIN_INGRESS, prioDown)
	}
	if f, err := hasFilter(tap, netlink.HANDLE_MIN_INGRESS, prioDown); err != nil || f != nil {
		return err
	}
	return setBPFDrop(tap, netlink.HANDLE_MIN_INGRESS, prioDown, dropAllProgram(), "fl_down")
}

// setPartition makes a tap drop frames toward its VM from the given MACs
// (none: remove the filter).
func setPartition(tap netlink.Link, from []net.HardwareAddr) error {
	if len(from) == 0 {
		return delFilters(tap, netlink.HANDLE_MIN_EGRESS, prioPartition)
	}
	return setBPFDrop(tap, netlink.HANDLE_MIN_EGRESS, prioPartition, dropFromProgram(from), "fl_partition")
}

// setRedirect sends (or stops sending) what a tap's VM sends through ifb.
func setRedirect(tap netlink.Link, ifb netlink.Link, on bool) error {
	if !on {
		return delFilters(tap, netlink.HANDLE_MIN_INGRESS, prioRedirect)
	}
	f, err := hasFilter(tap, netlink.HANDLE_MIN_INGRESS, prioRedirect)
	if err != nil || f != nil {
		return err
	}
	return addRedirect(conn{}, tap, ifb)
}

// addRedirect adds the redirect from tap's ingress to ifb; the kernel
// refuses it when one is there.
func addRedirect(c conn, tap netlink.Link, ifb netlink.Link) error {
	u := &netlink.U32{
		// The handle the kernel gives a first u32 filter (800::800), fixed so
		// that a second add is refused instead of stacking another.
		FilterAttrs: netlink.FilterAttrs{LinkIndex: tap.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS, Priority: prioRedirect, Protocol: unix.ETH_P_ALL, Handle: 0x80000800},
		Sel: &netlink.TcU32Sel{
			Flags: nl.TC_U32_TERMINAL,
			Nkeys: 1,
			Keys:  []netlink.TcU32Key{{Mask: 0, Val: 0, Off: 0}}, // match everything
		},
		Actions: []netlink.Action{netlink.NewMirredAction(ifb.Attrs().Index)},
	}
	if err := c.handle().FilterAdd(u); err != nil {
		return fmt.Errorf("%s: redirect to %s: %w", tap.Attrs().Name, ifb.Attrs().Name, err)
	}
	return nil
}

// ensureIfb makes the helper device, up, without IPv6 of its own.
func ensureIfb(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		ifb := &netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: 1000}}
		if err := netlink.LinkAdd(ifb); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create ifb %s (needs the ifb module): %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return nil, fmt.Errorf("ifb %s: %w", name, err)
		}
	} else if l.Type() != "ifb" {
		return nil, fmt.Errorf("ifb %s: a %s device has that name", name, l.Type())
	} else if l.Attrs().Flags&net.FlagUp != 0 {
		return l, nil // up, so set up below already (IPv6 goes off before up)
	}
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0)
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("bring up %s: %w", name, err)
	}
	return l, nil
}

// shape builds (or changes in place) the qdiscs on ifb for q: netem alone
// at the root when q needs netem (it carries the rate too), else htb with
// a class for the rate and a pfifo under it.
func shape(c conn, ifb netlink.Link, q netfabric.Impairment, limit uint32, dist []int16, seed uint64, tickUs float64) error {
	// Most changes find the qdiscs they need already in place and only
	// change their parameters: try exactly those requests first. Finding
	// out what is in place takes a qdisc dump, which walks every device
	// of the host, so in a lab of 50 links it cost more than the change.
	// The kernel refuses a change to a qdisc of another kind (or under a
	// parent that is not there), and then the careful path looks and
	// rebuilds.
	if err := reshape(c, ifb, q, limit, dist, seed, tickUs); err == nil {
		return nil
	}
	name := ifb.Attrs().Name
	qs, err := netlink.QdiscList(ifb)
	if err != nil {
		return fmt.Errorf("%s: list qdiscs: %w", name, err)
	}
	kindAt := map[uint32]string{}
	for _, x := range qs {
		kindAt[x.Attrs().Handle] = x.Type()
	}
	if needsNetem(q) {
		if kindAt[htbRoot] != "" && kindAt[htbRoot] != "netem" {
			if err := delRoot(ifb); err != nil {
				return err
			}
		}
		return setNetem(c, ifb, htbRoot, netlink.HANDLE_ROOT, q, limit, dist, seed, tickUs)
	}
	if kindAt[htbRoot] != "htb" {
		if err := delRoot(ifb); err != nil {
			return err
		}
		root := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: ifb.Attrs().Index, Handle: htbRoot, Parent: netlink.HANDLE_ROOT})
		root.Defcls = 1
		if err := netlink.QdiscAdd(root); err != nil {
			return fmt.Errorf("%s: add htb: %w", name, err)
		}
	}
	if err := setClass(c, ifb, q.RateBits); err != nil {
		return err
	}
	if k := kindAt[leafQdisc]; k != "" && k != "pfifo" {
		if err := netlink.QdiscDel(&netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifb.Attrs().Index, Handle: leafQdisc, Parent: htbClass}, QdiscType: k}); err != nil && !notFound(err) {
			return fmt.Errorf("%s: remove %s: %w", name, k, err)
		}
	}
	return setPfifo(c, ifb, limit)
}

// reshape changes the parameters of the qdiscs q needs, assuming they are
// in place; the kernel refuses it when they are not.
func reshape(c conn, ifb netlink.Link, q netfabric.Impairment, limit uint32, dist []int16, seed uint64, tickUs float64) error {
	if needsNetem(q) {
		return setNetem(c, ifb, htbRoot, netlink.HANDLE_ROOT, q, limit, dist, seed, tickUs)
	}
	if err := setClass(c, ifb, q.RateBits); err != nil {
		return err
	}
	return setPfifo(c, ifb, limit)
}

// setNetem creates or changes the netem qdisc handle under parent.
func setNetem(c conn, ifb netlink.Link, handle, parent uint32, q netfabric.Impairment, limit uint32, dist []int16, seed uint64, tickUs float64) error {
	name := ifb.Attrs().Name
	req := nl.NewNetlinkRequest(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(ifb.Attrs().Index), Handle: handle, Parent: parent})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("netem")))
	req.AddData(netemOptions(q, limit, dist, seed, tickUs))
	if err := c.execute(req); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("%s: %w: this kernel has no sch_netem (delay, jitter, loss, duplicate, reorder and corrupt need it; use fabric = userspace)", name, netfabric.ErrUnsupported)
		}
		return fmt.Errorf("%s: netem %v: %w", name, q, err)
	}
	return nil
}

// setClass sets the rate of the htb class.
func setClass(c conn, ifb netlink.Link, rateBits int64) error {
	rate := uint64(rateBits)
	class := netlink.NewHtbClass(netlink.ClassAttrs{LinkIndex: ifb.Attrs().Index, Parent: htbRoot, Handle: htbClass},
		netlink.HtbClassAttrs{Rate: rate, Ceil: rate, Quantum: uint32(min(max(rate/8/100, 1514), 200000))})
	if err := c.handle().ClassReplace(class); err != nil {
		return fmt.Errorf("%s: htb class rate %s: %w", ifb.Attrs().Name, netfabric.FormatRate(rateBits), err)
	}
	return nil
}

// setPfifo puts a plain FIFO as deep as the bandwidth-delay product wants,
// rather than the device's short default, under the htb class.
func setPfifo(c conn, ifb netlink.Link, limit uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(ifb.Attrs().Index), Handle: leafQdisc, Parent: htbClass})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("pfifo")))
	req.AddData(nl.NewRtAttr(nl.TCA_OPTIONS, nl.Uint32Attr(limit)))
	if err := c.execute(req); err != nil {
		return fmt.Errorf("%s: pfifo: %w", ifb.Attrs().Name, err)
	}
	return nil
}

func delRoot(l netlink.Link) error {
	q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_ROOT}, QdiscType: "x"}
	if err := netlink.QdiscDel(q); err != nil && !notFound(err) {
		return fmt.Errorf("%s: delete root qdisc: %w", l.Attrs().Name, err)
	}
	return nil
}

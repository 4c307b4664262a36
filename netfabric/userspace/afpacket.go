package userspace

import (
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openPacket opens an AF_PACKET socket on a host-side device (a VM's tap
// or a veth) for the engine. Every frame read or written starts with a
// virtio-net header (PACKET_VNET_HDR): the kernel hands over TSO/GSO
// super-frames whole and takes them back whole, so a 64 KiB burst of TCP
// costs one read and one write instead of 45 of each; checksums stay
// offloaded (NEEDS_CSUM). Frames written skip the device's qdisc
// (PACKET_QDISC_BYPASS), and the socket does not see its own output
// (PACKET_IGNORE_OUTGOING).
func openPacket(dev string, batch int) (*batchConn, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", dev, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("attach %s: packet socket (needs root or CAP_NET_RAW): %w", dev, err)
	}
	fail := func(what string, err error) (*batchConn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("attach %s: %s: %w", dev, what, err)
	}
	// The options must be set before bind: the vnet header changes the
	// frame layout of every packet queued after it.
	for _, o := range []struct {
		name string
		opt  int
		val  int
	}{
		{"PACKET_VNET_HDR", unix.PACKET_VNET_HDR, 1},
		{"PACKET_QDISC_BYPASS", unix.PACKET_QDISC_BYPASS, 1},
		{"PACKET_IGNORE_OUTGOING", unix.PACKET_IGNORE_OUTGOING, 1},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, o.opt, o.val); err != nil {
			return fail(o.name, err)
		}
	}
	// Big socket buffers absorb bursts while a reader is descheduled (two
	// cores shared with the guests). FORCE ignores rmem_max; fall back to
	// the capped call when not privileged.
	setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, 16<<20)
	setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, 16<<20)

	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	// A lab NIC's frames are addressed to the VM behind it, not to this
	// device: see all of them.
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("promiscuous mode", err)
	}
	return newBatchConn("packet "+dev, fd, batch)
}

// packetDrops returns how many frames the kernel dropped for this socket
// since the last call (receive buffer full).
func packetDrops(c *batchConn) uint64 {
	var st unix.TpacketStats
	var drops uint64
	_ = c.rc.Control(func(fd uintptr) {
		l := uint32(unsafe.Sizeof(st))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_PACKET, unix.PACKET_STATISTICS,
			uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&l)), 0)
		if e == 0 {
			drops = uint64(st.Drops)
		}
	})
	return drops
}

func setBuf(fd, force, plain, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

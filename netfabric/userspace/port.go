package userspace

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric/internal/frame"
)

// port is one endpoint of a link: a host-side device read and written
// through AF_PACKET, or a UDP socket (a peer fabricd on another machine,
// or a QEMU NIC of type 'udp').
type port struct {
	lk   *link
	idx  int
	host string
	name string // device name or UDP address, for messages
	udp  bool
	conn *batchConn
	line *line // what this host sends on the link
}

// readLoop moves frames from the port into its line until the socket is
// closed.
func (p *port) readLoop() error {
	bufs := make([][]byte, batchSize)
	views := make([][]byte, batchSize)
	lens := make([]int, batchSize)
	frames := make([][]byte, 0, batchSize)
	for i := range bufs {
		bufs[i] = make([]byte, maxFrame)
		views[i] = bufs[i]
		if p.udp { // datagrams carry bare frames: keep room for the vnet header
			views[i] = bufs[i][frame.VnetLen:]
		}
	}
	f := newForwarder(p.lk, p)
	for {
		n, err := p.conn.readBatch(views, lens)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			if errors.Is(err, unix.ENETDOWN) || errors.Is(err, unix.ECONNREFUSED) {
				// The device went down (a VM stopped, a tap was set down)
				// or the UDP peer is not there yet: this port waits, the
				// rest of the fabric goes on.
				log.Printf("link %s: %s: %v (waiting)", p.lk.name, p.name, err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return fmt.Errorf("link %s: read from %s: %w", p.lk.name, p.name, err)
		}
		now := p.lk.e.now()
		frames = frames[:0]
		for i := 0; i < n; i++ {
			b := bufs[i][:lens[i]]
			if p.udp {
				b = bufs[i][:frame.VnetLen+lens[i]]
				frame.ClearVnet(b)
			}
			if len(b) < frame.VnetLen+14 {
				continue // runt
			}
			p.lk.learn(b[frame.VnetLen:], p.idx)
			frames = append(frames, b)
		}
		if len(frames) > 0 {
			p.line.ingest(frames, now, f)
		}
	}
}

// openUDP opens a UDP socket bound to local and connected to remote, so
// only the peer's datagrams arrive.
func openUDP(local, remote string) (*batchConn, error) {
	la, err := netip.ParseAddrPort(local)
	if err != nil {
		return nil, fmt.Errorf("udp local address %q: %w", local, err)
	}
	ra, err := netip.ParseAddrPort(remote)
	if err != nil {
		return nil, fmt.Errorf("udp remote address %q: %w", remote, err)
	}
	family := unix.AF_INET
	if la.Addr().Is6() && !la.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	sa := func(a netip.AddrPort) unix.Sockaddr {
		if family == unix.AF_INET6 {
			return &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
		}
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().Unmap().As4()}
	}
	setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, 8<<20)
	setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, 8<<20)
	if err := unix.Bind(fd, sa(la)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("udp bind %s: %w", local, err)
	}
	if err := unix.Connect(fd, sa(ra)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("udp connect %s: %w", remote, err)
	}
	return newBatchConn("udp "+local+"->"+remote, fd, batchSize)
}

// prepareDevice makes a host-side device fit to be a port: up, and with no
// IPv6 of its own, so the host never speaks on a lab link (no router
// solicitations or MLD reports from the host into the lab).
func prepareDevice(dev string) error {
	if _, err := net.InterfaceByName(dev); err != nil {
		return fmt.Errorf("device %s: %w", dev, err)
	}
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6", []byte("1"), 0)
	return setUp(dev)
}

package kernel

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/internal/frame"
)

// Capture streams a pcap of the link's bridge to w until ctx ends. The
// socket puts the bridge in promiscuous mode, which makes the bridge hand
// it every frame it forwards between the taps, after the senders'
// shaping. Super-frames are cut into wire packets with checksums filled
// in, as the userspace fabric's capture shows them.
func (s *Shaper) Capture(ctx context.Context, link string, w io.Writer) error {
	return CaptureBridge(ctx, s.links, link, w)
}

// CaptureBridge streams a pcap of a link's host bridge: any fabric that
// joins a link with a Linux bridge (kernel, guest) captures this way.
func CaptureBridge(ctx context.Context, links netfabric.Links, link string, w io.Writer) error {
	l, err := links.Find(link)
	if err != nil {
		return err
	}
	if l.Bridge == "" {
		return fmt.Errorf("capture %s: the link has no bridge", link)
	}
	f, err := openCapture(l.Bridge)
	if err != nil {
		return fmt.Errorf("capture %s: %w", link, err)
	}
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	defer f.Close()

	pw, err := netfabric.NewPcapWriter(w, 65536+64)
	if err != nil {
		return fmt.Errorf("capture %s: %w", link, err)
	}
	flusher, _ := w.(interface{ Flush() error })
	flush := func() error {
		if flusher != nil {
			return flusher.Flush()
		}
		return nil
	}
	if err := flush(); err != nil {
		return fmt.Errorf("capture %s: %w", link, err)
	}
	buf := make([]byte, 65536+64)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("capture %s: %w", link, err)
		}
		if n < frame.VnetLen+14 {
			continue
		}
		at := time.Now()
		b := buf[:n]
		var werr error
		write := func(p []byte) {
			if werr == nil {
				werr = pw.WritePacket(at, p[frame.VnetLen:])
			}
		}
		if frame.GetVnet(b).GSO() == unix.VIRTIO_NET_HDR_GSO_NONE ||
			!frame.Segment(b, func(n int) []byte { return make([]byte, n) }, write) {
			frame.CompleteChecksum(b)
			write(b)
		}
		if werr == nil {
			werr = flush()
		}
		if werr != nil {
			return fmt.Errorf("capture %s: %w", link, werr)
		}
	}
}

// openCapture opens a promiscuous packet socket on dev, read through Go's
// poller so that closing it ends a pending read.
func openCapture(dev string) (*os.File, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("packet socket (needs root): %w", err)
	}
	fail := func(err error) (*os.File, error) {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail(fmt.Errorf("PACKET_VNET_HDR: %w", err))
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail(fmt.Errorf("bind %s: %w", dev, err))
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail(fmt.Errorf("promiscuous mode on %s: %w", dev, err))
	}
	return os.NewFile(uintptr(fd), "capture "+dev), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

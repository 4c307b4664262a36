package userspace

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/internal/frame"
)

// capture is one pcap stream of a link. Forwarding never waits for it: a
// reader that falls behind loses frames from its capture (counted), not
// the link.
type capture struct {
	ch      chan captured
	dropped atomic.Uint64
}

type captured struct {
	at time.Time
	b  []byte // vnet header + frame, a private copy
}

func (c *capture) offer(b []byte) {
	select {
	case c.ch <- captured{time.Now(), slices.Clone(b)}:
	default:
		c.dropped.Add(1)
	}
}

// Capture streams a pcap of everything delivered on link to w until ctx
// ends or w fails. Frames appear as they leave the link (after loss and
// delay), as wire packets: super-frames are cut and checksums filled in,
// so Wireshark shows what a real wire would carry.
func (e *Engine) Capture(ctx context.Context, linkName string, w io.Writer) error {
	lk, err := e.link(linkName)
	if err != nil {
		return err
	}
	pw, err := netfabric.NewPcapWriter(w, maxFrame)
	if err != nil {
		return fmt.Errorf("capture %s: %w", linkName, err)
	}
	flusher, _ := w.(interface{ Flush() error })
	if flusher != nil { // a live viewer needs the header before any packet
		if err := flusher.Flush(); err != nil {
			return fmt.Errorf("capture %s: %w", linkName, err)
		}
	}
	c := &capture{ch: make(chan captured, 4096)}
	lk.addCapture(c)
	defer lk.removeCapture(c)

	write := func(at time.Time, b []byte) error {
		return pw.WritePacket(at, b[frame.VnetLen:])
	}
	writeWire := func(p captured) error {
		if frame.GetVnet(p.b).GSO() != unix.VIRTIO_NET_HDR_GSO_NONE {
			var werr error
			cut := frame.Segment(p.b, func(n int) []byte { return make([]byte, n) }, func(s []byte) {
				if werr == nil {
					werr = write(p.at, s)
				}
			})
			if cut {
				return werr
			}
		}
		frame.CompleteChecksum(p.b)
		return write(p.at, p.b)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-c.ch:
			if err := writeWire(p); err != nil {
				return fmt.Errorf("capture %s: %w", linkName, err)
			}
			if flusher != nil && len(c.ch) == 0 {
				if err := flusher.Flush(); err != nil {
					return fmt.Errorf("capture %s: %w", linkName, err)
				}
			}
		}
	}
}

func (lk *link) addCapture(c *capture) {
	lk.e.mu.Lock()
	defer lk.e.mu.Unlock()
	var list []*capture
	if old := lk.captures.Load(); old != nil {
		list = slices.Clone(*old)
	}
	list = append(list, c)
	lk.captures.Store(&list)
}

func (lk *link) removeCapture(c *capture) {
	lk.e.mu.Lock()
	defer lk.e.mu.Unlock()
	old := lk.captures.Load()
	if old == nil {
		return
	}
	list := slices.DeleteFunc(slices.Clone(*old), func(x *capture) bool { return x == c })
	if len(list) == 0 {
		lk.captures.Store(nil)
		return
	}
	lk.captures.Store(&list)
}

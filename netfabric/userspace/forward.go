package userspace

import (
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/internal/frame"
)

// batchSize is how many frames one system call reads or writes.
const batchSize = 32

// link joins the ports of one lab link or frame.Segment.
type link struct {
	e       *Engine
	name    string
	quality netfabric.Impairment // declared quality
	ports   []*port
	down    atomic.Bool

	macMu sync.RWMutex
	macs  map[[6]byte]int // frame.Segment: learned MAC -> port index

	captures atomic.Pointer[[]*capture]
}

// learn records that mac sits behind port i. Only segments learn: on a
// point-to-point link everything goes to the other end.
func (lk *link) learn(f []byte, i int) {
	if len(lk.ports) <= 2 || len(f) < 12 || f[6]&1 != 0 {
		return
	}
	var mac [6]byte
	copy(mac[:], f[6:12])
	lk.macMu.RLock()
	j, ok := lk.macs[mac]
	lk.macMu.RUnlock()
	if ok && j == i {
		return
	}
	lk.macMu.Lock()
	lk.macs[mac] = i
	lk.macMu.Unlock()
}

// forwarder delivers frames from one port to the others of its link in
// batches. Each goroutine that delivers owns one.
type forwarder struct {
	lk      *link
	src     *port
	out     [][][]byte // per destination port: frames to write
	wire    [][]wireCount
	senders []*sender
	scratch [][]byte // buffers made for UDP destinations, freed after flush
}

type wireCount struct{ pkts, bytes int }

func newForwarder(lk *link, src *port) *forwarder {
	n := len(lk.ports)
	f := &forwarder{lk: lk, src: src, out: make([][][]byte, n), wire: make([][]wireCount, n), senders: make([]*sender, n)}
	for i, p := range lk.ports {
		if p != src {
			f.senders[i] = p.conn.newSender(batchSize)
		}
	}
	return f
}

func (f *forwarder) add(b []byte) {
	p, n := frame.WireSize(b[frame.VnetLen:], frame.GetVnet(b))
	f.addCounted(b, p, n)
}

// addCounted queues b (vnet header + frame) for its destinations. b must
// stay valid until flush.
func (f *forwarder) addCounted(b []byte, pkts, bytes int) {
	lk := f.lk
	groups := lk.e.groups.Load()
	delivered := false
	to := func(i int) {
		dst := lk.ports[i]
		if groups != nil && netfabric.Separated(*groups, f.src.host, dst.host) {
			f.src.line.ctr.dropPartition.Add(uint64(pkts))
			return
		}
		f.out[i] = append(f.out[i], b)
		f.wire[i] = append(f.wire[i], wireCount{pkts, bytes})
		delivered = true
	}
	f.route(b, to)
	if !delivered {
		return
	}
	if caps := lk.captures.Load(); caps != nil {
		for _, c := range *caps {
			c.offer(b)
		}
	}
}

// route calls to for each port the frame goes to.
func (f *forwarder) route(b []byte, to func(i int)) {
	lk := f.lk
	if len(lk.ports) == 2 {
		to(1 - f.src.idx)
		return
	}
	dst := b[frame.VnetLen : frame.VnetLen+6]
	if dst[0]&1 == 0 { // unicast: send where the MAC was learned
		var mac [6]byte
		copy(mac[:], dst)
		lk.macMu.RLock()
		i, ok := lk.macs[mac]
		lk.macMu.RUnlock()
		if ok {
			if i != f.src.idx {
				to(i)
			}
			return
		}
	}
	for i := range lk.ports { // broadcast, multicast, unknown: flood
		if i != f.src.idx {
			to(i)
		}
	}
}

// flush writes everything queued by add and counts it.
func (f *forwarder) flush() {
	ctr := &f.src.line.ctr
	for i, frames := range f.out {
		if len(frames) == 0 {
			continue
		}
		dst := f.lk.ports[i]
		wire := f.wire[i]
		if dst.udp {
			frames, wire = f.forUDP(frames)
		}
		var refusedPkts, refusedBytes, peerDownPkts int
		err := f.senders[i].writeBatch(frames, func(j int, err error) {
			refusedPkts += wire[j].pkts
			refusedBytes += wire[j].bytes
			if peerDown(err) {
				peerDownPkts += wire[j].pkts
			}
		})
		var pkts, bytes int
		for _, w := range wire {
			pkts += w.pkts
			bytes += w.bytes
		}
		if err != nil { // socket closed under us: the engine is stopping
			refusedPkts, refusedBytes = pkts, bytes
		}
		ctr.txPkts.Add(uint64(pkts - refusedPkts))
		ctr.txBytes.Add(uint64(bytes - refusedBytes))
		ctr.dropError.Add(uint64(refusedPkts - peerDownPkts))
		ctr.dropPeerDown.Add(uint64(peerDownPkts))
		clear(f.out[i])
		f.out[i] = f.out[i][:0]
		f.wire[i] = f.wire[i][:0]
	}
	for _, b := range f.scratch {
		f.src.lk.e.pool.put(b)
	}
	f.scratch = f.scratch[:0]
}

// forUDP turns frames into what a UDP endpoint takes: plain frames of wire
// size with complete checksums (no virtio header, no offloads).
func (f *forwarder) forUDP(frames [][]byte) ([][]byte, []wireCount) {
	pool := f.lk.e.pool
	var out [][]byte
	var wire []wireCount
	emit := func(b []byte) {
		f.scratch = append(f.scratch, b)
		out = append(out, b[frame.VnetLen:])
		wire = append(wire, wireCount{1, len(b) - frame.VnetLen})
	}
	for _, b := range frames {
		if frame.GetVnet(b).GSO() != unix.VIRTIO_NET_HDR_GSO_NONE && frame.Segment(b, pool.get, emit) {
			continue
		}
		c := pool.get(len(b))
		copy(c, b)
		frame.CompleteChecksum(c)
		emit(c)
	}
	return out, wire
}

// peerDown reports whether a send failed because the receiving tap has no
// carrier or is down (its VM has not opened it yet, or stopped): the
// kernel's qdisc of a carrier-less device drops (ENOBUFS), a device that
// is down refuses (ENETDOWN, ENXIO).
func peerDown(err error) bool {
	return errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENETDOWN) || errors.Is(err, unix.ENXIO)
}

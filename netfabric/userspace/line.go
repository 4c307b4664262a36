package userspace

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/internal/frame"
)

// assumedRate sizes the queue of a link without a rate limit: the
// bandwidth-delay product at 10 Gbit/s.
const assumedRate = 10e9

// maxQueueBytes caps one delay line's memory whatever its packet limit.
const maxQueueBytes = 256 << 20

// line is one direction of a link: everything one host sends on it. It
// applies the impairment (loss, duplicate, corrupt, reorder, rate, delay
// and jitter) and holds surviving packets in a timed FIFO until they are
// due. No goroutine ever sleeps per packet: a timerfd armed at the head's
// release time wakes the line's sender, which sends everything due in one
// batch, so a 100 ms line carries as much as a 0 ms one.
type line struct {
	e    *Engine
	lk   *link
	from *port

	mu       sync.Mutex
	q        netfabric.Impairment
	changed  time.Time // when q took effect
	limit    int
	fifo     fifo
	qbytes   int
	wireFree int64 // rate: when the emulated wire is next free
	lastOut  int64 // latest release time given out; keeps jitter in order
	sending  bool  // the sender holds popped packets not yet written
	armedAt  int64 // timer armed for this time; 0 = disarmed
	dec      *decider
	timer    *os.File // timerfd
	timerFD  int
	ctr      counters
}

// counters are updated without the line lock by the goroutines that
// deliver packets; Show reads a snapshot.
type counters struct {
	rxPkts, rxBytes, txPkts, txBytes                                      atomic.Uint64
	dropLoss, dropQueue, dropDown, dropPartition, dropError, dropPeerDown atomic.Uint64
	dropOverrun                                                           atomic.Uint64
	duplicated, corrupted, reordered                                      atomic.Uint64
}

func newLine(e *Engine, lk *link, from *port) (*line, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	l := &line{
		e: e, lk: lk, from: from,
		dec:     newDecider(e.cfg.Seed, lk.name, from.host),
		timer:   os.NewFile(uintptr(fd), "timerfd"),
		timerFD: fd,
	}
	l.setQuality(lk.quality)
	return l, nil
}

func (l *line) setQuality(q netfabric.Impairment) {
	l.q = q
	l.changed = time.Now()
	l.limit = q.QueueLimit(assumedRate)
}

// passThrough reports whether frames may skip the line altogether: no
// impairment, link up and nothing queued or in flight that they could
// overtake. Called with mu held.
func (l *line) passThrough() bool {
	return l.q.IsZero() && l.fifo.len() == 0 && !l.sending && !l.lk.down.Load()
}

// ingest takes a batch of frames the port just read. Frames that need no
// shaping go straight to the forwarder; the rest enter the delay line.
func (l *line) ingest(frames [][]byte, now int64, f *forwarder) {
	for _, b := range frames {
		p, n := frame.WireSize(b[frame.VnetLen:], frame.GetVnet(b))
		l.ctr.rxPkts.Add(uint64(p))
		l.ctr.rxBytes.Add(uint64(n))
	}
	l.mu.Lock()
	if l.passThrough() {
		l.mu.Unlock()
		for _, b := range frames {
			f.add(b)
		}
		f.flush()
		return
	}
	for _, b := range frames {
		l.admit(b, now)
	}
	l.armLocked()
	l.mu.Unlock()
}

// admit decides the fate of one frame and queues what survives. The frame
// is copied: the caller's buffer is reused for the next read.
func (l *line) admit(b []byte, now int64) {
	q := &l.q
	if l.lk.down.Load() || q.Down {
		p, _ := frame.WireSize(b[frame.VnetLen:], frame.GetVnet(b))
		l.ctr.dropDown.Add(uint64(p))
		return
	}
	v := frame.GetVnet(b)
	if q.PerPacket() && v.GSO() != unix.VIRTIO_NET_HDR_GSO_NONE {
		// One loss decision must hit one wire packet, not 45 of them.
		if frame.Segment(b, l.e.pool.get, func(s []byte) { l.admitOne(s, now) }) {
			return
		}
	}
	c := l.e.pool.get(len(b))
	copy(c, b)
	l.admitOne(c, now)
}

// admitOne applies the per-packet choices to an owned buffer.
func (l *line) admitOne(b []byte, now int64) {
	q := &l.q
	p, n := frame.WireSize(b[frame.VnetLen:], frame.GetVnet(b))
	st := l.dec.streams(trafficClass(b[frame.VnetLen:]))
	if q.PerPacket() && st.lost(q) {
		l.ctr.dropLoss.Add(uint64(p))
		l.e.pool.put(b)
		return
	}
	copies := 1
	if chance(st.dup, q.Duplicate) {
		copies = 2
		l.ctr.duplicated.Add(uint64(p))
	}
	for c := 0; c < copies; c++ {
		buf := b
		if c == 1 {
			buf = l.e.pool.get(len(b))
			copy(buf, b)
		}
		if chance(st.corrupt, q.Corrupt) && len(buf) > frame.VnetLen+14 {
			frame.CompleteChecksum(buf) // else the receiver's offload would "fix" it
			// Flip one bit past the Ethernet header, so the frame still
			// reaches the host it was sent to.
			i := frame.VnetLen + 14 + st.corrupt.IntN(len(buf)-frame.VnetLen-14)
			buf[i] ^= 1 << st.corrupt.IntN(8)
			l.ctr.corrupted.Add(uint64(p))
		}
		if l.fifo.len() >= l.limit || l.qbytes+len(buf) > maxQueueBytes {
			l.ctr.dropQueue.Add(uint64(p))
			l.e.pool.put(buf)
			continue
		}
		if chance(st.reorder, q.Reorder) {
			l.ctr.reordered.Add(uint64(p))
			l.fifo.pushFront(pkt{b: buf, at: now, pkts: p, bytes: n})
			l.qbytes += len(buf)
			continue
		}
		at := now
		if q.RateBits > 0 {
			// A virtual wire: each packet holds it for its serialisation
			// time. Release times come from this clock, not from when the
			// timer happens to fire, so the long-run rate is exact.
			start := max(now, l.wireFree)
			l.wireFree = start + int64(n)*8*int64(time.Second)/q.RateBits
			at = l.wireFree
		}
		at += int64(st.delayOf(q))
		// Never before an earlier packet: jitter alone does not reorder.
		at = max(at, l.lastOut)
		l.lastOut = at
		l.fifo.pushBack(pkt{b: buf, at: at, pkts: p, bytes: n})
		l.qbytes += len(buf)
	}
}

// armLocked points the timer at the head's release time if it is not
// already due to fire earlier. Called with mu held.
func (l *line) armLocked() {
	if l.fifo.len() == 0 || l.sending {
		return // the sender re-checks the queue before it sleeps
	}
	at := l.fifo.front().at
	if l.armedAt != 0 && l.armedAt <= at {
		return
	}
	l.armedAt = at
	its := unix.ItimerSpec{Value: unix.NsecToTimespec(max(at, 1))}
	_ = unix.TimerfdSettime(l.timerFD, unix.TFD_TIMER_ABSTIME, &its, nil)
}

// run is the line's sender: it sleeps on the timer and sends whatever is
// due in batches. It returns when the timer is closed.
func (l *line) run() {
	f := newForwarder(l.lk, l.from)
	due := make([]pkt, 0, batchSize)
	var tick [8]byte
	for {
		if _, err := l.timer.Read(tick[:]); err != nil {
			return // closed: engine stopping
		}
		l.mu.Lock()
		l.armedAt = 0
		for {
			now := l.e.now()
			due = due[:0]
			for l.fifo.len() > 0 && l.fifo.front().at <= now && len(due) < cap(due) {
				p := l.fifo.popFront()
				l.qbytes -= len(p.b)
				due = append(due, p)
			}
			if len(due) == 0 {
				break
			}
			l.sending = true
			l.mu.Unlock()
			for _, p := range due {
				f.addCounted(p.b, p.pkts, p.bytes)
			}
			f.flush()
			for _, p := range due {
				l.e.pool.put(p.b)
			}
			l.mu.Lock()
			l.sending = false
		}
		l.armLocked()
		l.mu.Unlock()
	}
}

func (l *line) close() {
	l.timer.Close()
	l.mu.Lock()
	for l.fifo.len() > 0 {
		l.e.pool.put(l.fifo.popFront().b)
	}
	l.mu.Unlock()
}

func (l *line) snapshot() netfabric.Direction {
	l.mu.Lock()
	q, changed := l.q, l.changed
	queued := l.fifo.len()
	l.mu.Unlock()
	c := &l.ctr
	return netfabric.Direction{
		From:    l.from.host,
		Quality: q,
		Changed: changed,
		Counters: &netfabric.Counters{
			RxPackets: c.rxPkts.Load(), RxBytes: c.rxBytes.Load(),
			TxPackets: c.txPkts.Load(), TxBytes: c.txBytes.Load(),
			DropLoss: c.dropLoss.Load(), DropQueue: c.dropQueue.Load(),
			DropDown: c.dropDown.Load(), DropPartition: c.dropPartition.Load(),
			DropError: c.dropError.Load(), DropPeerDown: c.dropPeerDown.Load(), DropOverrun: c.dropOverrun.Load(),
			Duplicated: c.duplicated.Load(), Corrupted: c.corrupted.Load(),
			Reordered: c.reordered.Load(), Queued: uint64(queued),
		},
	}
}

package userspace

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/internal/frame"
)

// decider makes the random choices of one direction of one link. Its
// random streams derive from the lab seed, the link and the sending host,
// so the same seed gives the same choices on every run.
//
// Each kind of traffic (Ethernet type plus IP protocol: ARP, ICMP, TCP,
// UDP, ...) has streams of its own: the drop pattern of a ping is the
// same whether or not an ARP refresh or a stray IPv6 packet happened to
// pass in between. Each kind of choice (loss, delay, ...) has its own
// stream too, so turning on jitter does not move which packets are lost.
type decider struct {
	base    [2]uint64
	classes map[uint32]*streams
}

type streams struct {
	loss, delay, dup, corrupt, reorder *rand.Rand
	geBad                              bool // Gilbert-Elliott chain in its bad state
}

func newDecider(seed int64, link, from string) *decider {
	h := fnv.New128a()
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], uint64(seed))
	h.Write(s[:])
	h.Write([]byte(link))
	h.Write([]byte{0})
	h.Write([]byte(from))
	sum := h.Sum(nil)
	return &decider{
		base:    [2]uint64{binary.LittleEndian.Uint64(sum), binary.LittleEndian.Uint64(sum[8:])},
		classes: map[uint32]*streams{},
	}
}

func (d *decider) streams(class uint32) *streams {
	if s, ok := d.classes[class]; ok {
		return s
	}
	mk := func(kind uint64) *rand.Rand {
		// Distinct, well-mixed seeds per class and kind.
		k := uint64(class)<<8 | kind
		return rand.New(rand.NewPCG(d.base[0]^mix(k), d.base[1]^mix(^k)))
	}
	s := &streams{loss: mk(1), delay: mk(2), dup: mk(3), corrupt: mk(4), reorder: mk(5)}
	d.classes[class] = s
	return s
}

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// trafficClass keys the random streams: Ethernet type and IP protocol.
func trafficClass(f []byte) uint32 {
	if len(f) < 14 {
		return 0
	}
	et := uint32(binary.BigEndian.Uint16(f[12:]))
	h, ok := frame.Parse(f)
	if !ok {
		return et << 8
	}
	return et<<8 | uint32(h.Proto)
}

func chance(r *rand.Rand, percent float64) bool {
	return percent > 0 && r.Float64()*100 < percent
}

// lost decides whether the next packet is lost. The Gilbert-Elliott chain
// steps exactly as netem's does: first the state transition, then the loss
// draw with the loss probability of the state the packet arrived in.
func (s *streams) lost(q *netfabric.Impairment) bool {
	if q.GE.IsZero() {
		return chance(s.loss, q.Loss)
	}
	g := q.GE
	if !s.geBad {
		if chance(s.loss, g.P) {
			s.geBad = true
		}
		return chance(s.loss, g.OneMinusK)
	}
	if chance(s.loss, g.R) {
		s.geBad = false
	}
	return chance(s.loss, g.OneMinusH)
}

// delayOf draws one packet's delay: Delay plus Jitter times a sample of
// the distribution. As in netem, "" and uniform spread evenly over
// ±Jitter; for the others Jitter is the standard deviation. Negative
// results become zero.
func (s *streams) delayOf(q *netfabric.Impairment) time.Duration {
	if q.Jitter == 0 {
		return q.Delay
	}
	var x float64
	switch q.Distribution {
	case netfabric.DistNormal:
		x = s.delay.NormFloat64()
	case netfabric.DistPareto:
		x = pareto(s.delay)
	case netfabric.DistParetoNormal:
		// netem's paretonormal: a quarter normal, three quarters pareto.
		x = 0.25*s.delay.NormFloat64() + 0.75*pareto(s.delay)
	default:
		x = 2*s.delay.Float64() - 1
	}
	d := q.Delay + time.Duration(x*float64(q.Jitter))
	return max(d, 0)
}

// pareto draws from a Pareto distribution with shape 3 (netem's table),
// shifted and scaled to mean 0 and standard deviation 1.
func pareto(r *rand.Rand) float64 {
	const a = 3.0
	mean := a / (a - 1)                                // 1.5 for scale 1
	sd := math.Sqrt(a / ((a - 1) * (a - 1) * (a - 2))) // sqrt(0.75)
	u := 1 - r.Float64()                               // (0, 1]
	return (math.Pow(u, -1/a) - mean) / sd
}

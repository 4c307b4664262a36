package userspace

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/internal/frame"
)

// testLine is a delay line outside any engine: frames go in through admit
// and the test reads the queue.
func testLine(t *testing.T, seed int64, q netfabric.Impairment) *line {
	t.Helper()
	e := &Engine{cfg: Config{Seed: seed}, pool: newBufPool()}
	lk := &link{e: e, name: "ab"}
	p := &port{lk: lk, host: "a"}
	l, err := newLine(e, lk, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	if q.Limit == 0 {
		q.Limit = 1 << 20 // the tests never dequeue: no queue drops
	}
	l.setQuality(q)
	return l
}

// icmpFrame is an IPv4 echo request with sequence number seq, behind a
// zero vnet header.
func icmpFrame(seq int, size int) []byte {
	b := make([]byte, frame.VnetLen+14+20+8+size)
	f := b[frame.VnetLen:]
	copy(f[0:], []byte{0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x00})
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+size))
	ip[8], ip[9] = 64, frame.ProtoICMP
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	frame.IPChecksum(ip[:20])
	icmp := ip[20:]
	icmp[0] = 8
	binary.BigEndian.PutUint16(icmp[6:], uint16(seq))
	return b
}

func arpFrame() []byte {
	b := make([]byte, frame.VnetLen+42)
	f := b[frame.VnetLen:]
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x06})
	return b
}

// survivors admits n echo requests one microsecond apart and returns the
// sequence numbers that were queued, in queue order, with release times.
func survivors(l *line, n int, interleave func(i int) []byte) (seqs []int, at []int64) {
	for i := 0; i < n; i++ {
		now := int64(i) * 1000
		if interleave != nil {
			if b := interleave(i); b != nil {
				l.admit(b, now)
			}
		}
		l.admit(icmpFrame(i, 56), now)
	}
	for l.fifo.len() > 0 {
		p := l.fifo.popFront()
		f := p.b[frame.VnetLen:]
		if binary.BigEndian.Uint16(f[12:]) != 0x0800 {
			continue
		}
		seqs = append(seqs, int(binary.BigEndian.Uint16(f[14+20+6:])))
		at = append(at, p.at)
	}
	return seqs, at
}

// binomial99_9 is the 99.9 % interval of a Binomial(n, p) count, by the
// normal approximation (n*p is large in these tests).
func binomial99_9(n int, p float64) (lo, hi float64) {
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return mean - 3.29*sd, mean + 3.29*sd
}

func TestLossRate(t *testing.T) {
	for _, loss := range []float64{1, 10, 50} {
		const n = 20000
		l := testLine(t, 42, netfabric.Impairment{Loss: loss})
		seqs, _ := survivors(l, n, nil)
		lost := n - len(seqs)
		lo, hi := binomial99_9(n, loss/100)
		if float64(lost) < lo || float64(lost) > hi {
			t.Errorf("loss %v%%: lost %d of %d, want within [%.0f, %.0f]", loss, lost, n, lo, hi)
		}
		if got := l.ctr.dropLoss.Load(); got != uint64(lost) {
			t.Errorf("loss %v%%: counter says %d, queue says %d", loss, got, lost)
		}
	}
}

func TestSameSeedSameDrops(t *testing.T) {
	q := netfabric.Impairment{Loss: 10}
	a, _ := survivors(testLine(t, 7, q), 1000, nil)
	b, _ := survivors(testLine(t, 7, q), 1000, nil)
	c, _ := survivors(testLine(t, 8, q), 1000, nil)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different drop pattern")
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds, same drop pattern")
	}
	// Other traffic in between (an ARP now and then) does not move which
	// pings are lost: each kind of traffic has its own random stream.
	d, _ := survivors(testLine(t, 7, q), 1000, func(i int) []byte {
		if i%7 == 3 {
			return arpFrame()
		}
		return nil
	})
	if !slices.Equal(a, d) {
		t.Fatal("interleaved ARP changed the ping drop pattern")
	}
	// Turning on jitter does not move the losses either.
	q.Delay, q.Jitter = 10*time.Millisecond, 5*time.Millisecond
	e, _ := survivors(testLine(t, 7, q), 1000, nil)
	slices.Sort(e)
	if !slices.Equal(a, e) {
		t.Fatal("adding jitter changed the drop pattern")
	}
}

func TestGilbertElliottBursts(t *testing.T) {
	// p=2 %, r=25 %, always lose in bad, never in good: mean loss
	// p/(p+r) = 7.4 %, mean burst length 1/r = 4 packets.
	g := netfabric.GilbertElliott{P: 2, R: 25, OneMinusH: 100, OneMinusK: 0}
	const n = 65536 // sequence numbers are 16 bits
	l := testLine(t, 3, netfabric.Impairment{GE: g})
	seqs, _ := survivors(l, n, nil)
	got := make([]bool, n) // true = delivered
	for _, s := range seqs {
		got[s] = true
	}
	var lost, bursts, run int
	var burstLens []int
	for i := 0; i < n; i++ {
		if !got[i] {
			lost++
			run++
			continue
		}
		if run > 0 {
			bursts++
			burstLens = append(burstLens, run)
			run = 0
		}
	}
	meanLoss := float64(lost) / n * 100
	if want := g.MeanLoss(); math.Abs(meanLoss-want) > 1.0 {
		t.Errorf("mean loss %.2f%%, want %.2f%% ± 1", meanLoss, want)
	}
	meanBurst := float64(lost) / float64(bursts)
	if math.Abs(meanBurst-4) > 0.4 {
		t.Errorf("mean burst %.2f packets, want 4 ± 0.4", meanBurst)
	}
	// Random loss at the same rate would give bursts of about 1.08.
	if slices.Max(burstLens) < 10 {
		t.Errorf("longest burst %d: no real bursts", slices.Max(burstLens))
	}
}

func TestDelayAndJitter(t *testing.T) {
	const n = 20000
	for _, tc := range []struct {
		dist           string
		mean, sd       float64 // ms
		min, max       float64 // ms: hard bounds, -1 = none
		tolMean, tolSD float64
	}{
		// Uniform over 20 ± 5 ms: sd = 5/sqrt(3).
		{"", 20, 5 / math.Sqrt(3), 15, 25, 0.1, 0.1},
		{netfabric.DistUniform, 20, 5 / math.Sqrt(3), 15, 25, 0.1, 0.1},
		{netfabric.DistNormal, 20, 5, -1, -1, 0.15, 0.15},
		// Heavy tail: the sample sd converges slowly.
		{netfabric.DistPareto, 20, 5, -1, -1, 0.3, 1.0},
	} {
		t.Run("dist="+tc.dist, func(t *testing.T) {
			l := testLine(t, 11, netfabric.Impairment{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Distribution: tc.dist})
			st := l.dec.streams(0x80001)
			var xs []float64
			for i := 0; i < n; i++ {
				d := float64(st.delayOf(&l.q)) / 1e6
				xs = append(xs, d)
				if tc.min >= 0 && (d < tc.min || d > tc.max) {
					t.Fatalf("delay %.3f ms outside [%v, %v]", d, tc.min, tc.max)
				}
			}
			mean, sd := meanSD(xs)
			if math.Abs(mean-tc.mean) > tc.tolMean || math.Abs(sd-tc.sd) > tc.tolSD {
				t.Errorf("mean %.3f sd %.3f, want %.3f ± %v and %.3f ± %v", mean, sd, tc.mean, tc.tolMean, tc.sd, tc.tolSD)
			}
		})
	}
}

func meanSD(xs []float64) (float64, float64) {
	var s, ss float64
	for _, x := range xs {
		s += x
	}
	m := s / float64(len(xs))
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return m, math.Sqrt(ss / float64(len(xs)-1))
}

func TestJitterKeepsOrderUnlessReorderAsked(t *testing.T) {
	q := netfabric.Impairment{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}
	seqs, at := survivors(testLine(t, 5, q), 5000, nil)
	if !slices.IsSorted(seqs) || !slices.IsSorted(at) {
		t.Fatal("jitter without reorder reordered packets")
	}
	q.Reorder = 10
	l := testLine(t, 5, q)
	seqs, _ = survivors(l, 5000, nil)
	if slices.IsSorted(seqs) {
		t.Fatal("reorder 10% kept every packet in order")
	}
	n := float64(l.ctr.reordered.Load())
	lo, hi := binomial99_9(5000, 0.10)
	if n < lo || n > hi {
		t.Errorf("%v reordered, want within [%.0f, %.0f]", n, lo, hi)
	}
}

func TestRateSpacing(t *testing.T) {
	// 10 Mbit/s: a 1000-byte frame holds the wire 800 us. A burst of 100
	// leaves at exactly that spacing, so 100 frames take 80 ms.
	l := testLine(t, 1, netfabric.Impairment{RateBits: 10e6})
	size := 1000 - 14 - 20 - 8
	for i := 0; i < 100; i++ {
		l.admit(icmpFrame(i, size), 0)
	}
	var prev int64
	for i := 0; l.fifo.len() > 0; i++ {
		p := l.fifo.popFront()
		if gap := p.at - prev; gap != 800_000 {
			t.Fatalf("packet %d released %d ns after the previous, want 800000", i, gap)
		}
		prev = p.at
	}
	if prev != 80_000_000 {
		t.Fatalf("last release at %d ns, want 80 ms", prev)
	}
}

func TestQueueLimitDrops(t *testing.T) {
	l := testLine(t, 1, netfabric.Impairment{Delay: time.Second, Limit: 10})
	seqs, _ := survivors(l, 25, nil)
	if len(seqs) != 10 || l.ctr.dropQueue.Load() != 15 {
		t.Fatalf("limit 10: %d queued, %d dropped; want 10 and 15", len(seqs), l.ctr.dropQueue.Load())
	}
}

func TestDuplicateAndCorrupt(t *testing.T) {
	const n = 10000
	l := testLine(t, 9, netfabric.Impairment{Duplicate: 5})
	seqs, _ := survivors(l, n, nil)
	dups := len(seqs) - n
	lo, hi := binomial99_9(n, 0.05)
	if float64(dups) < lo || float64(dups) > hi || uint64(dups) != l.ctr.duplicated.Load() {
		t.Errorf("duplicate 5%%: %d extra copies (counter %d), want within [%.0f, %.0f]", dups, l.ctr.duplicated.Load(), lo, hi)
	}

	l = testLine(t, 9, netfabric.Impairment{Corrupt: 100})
	orig := icmpFrame(1, 56)
	l.admit(slices.Clone(orig), 0)
	got := l.fifo.popFront().b
	diff := 0
	for i := range orig {
		diff += bitsSet(orig[i] ^ got[i])
	}
	if diff != 1 {
		t.Fatalf("corrupt: %d bits differ, want exactly 1", diff)
	}
	if !slices.Equal(orig[:frame.VnetLen+14], got[:frame.VnetLen+14]) {
		t.Fatal("corrupt touched the Ethernet header")
	}
}

func bitsSet(b byte) (n int) {
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}

func TestDownDrops(t *testing.T) {
	l := testLine(t, 1, netfabric.Impairment{Down: true})
	seqs, _ := survivors(l, 10, nil)
	if len(seqs) != 0 || l.ctr.dropDown.Load() != 10 {
		t.Fatalf("down: %d passed, %d counted; want 0 and 10", len(seqs), l.ctr.dropDown.Load())
	}
}

package kernel

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric"
)

// netem attributes newer than what vishvananda/netlink names.
const (
	tcaNetemLatency64 = 10
	tcaNetemJitter64  = 11
	tcaNetemPrngSeed  = 14 // Linux 6.5+; older kernels ignore it
	netemLossGE       = 2
)

// orderKeepingRate is a netem rate (bytes/s) so high it adds no delay
// (under 1 ns per packet) but switches netem to computing each packet's
// send time from the previous packet's: with jitter, a packet then never
// leaves before the one sent ahead of it. Without a rate netem reorders
// under jitter, which forgelab only does when reordering is asked for.
const orderKeepingRate = 1 << 40

// netemRate is the rate netem is given for q, in bytes per second (0:
// none): q's own, or under jitter without one the order-keeping rate.
func netemRate(q netfabric.Impairment) uint64 {
	switch {
	case q.RateBits > 0:
		return uint64(max(q.RateBits/8, 1))
	case q.Jitter > 0:
		return orderKeepingRate
	}
	return 0
}

// needsNetem reports whether q asks for anything only netem can do.
func needsNetem(q netfabric.Impairment) bool {
	return q.Delay > 0 || q.Jitter > 0 || q.Loss > 0 || !q.GE.IsZero() ||
		q.Duplicate > 0 || q.Reorder > 0 || q.Corrupt > 0
}

// shapes reports whether q needs a qdisc at all (Down is a filter).
func shapes(q netfabric.Impairment) bool { return q.RateBits > 0 || needsNetem(q) }

// prob converts a percentage to netem's fixed point (UINT32_MAX = 100 %),
// rounding half to even as tc's set_percent (rint) does.
func prob(percent float64) uint32 {
	if percent >= 100 {
		return math.MaxUint32
	}
	return uint32(math.RoundToEven(percent / 100 * math.MaxUint32))
}

// tickPerUsec reads the scheduler clock's ratio from /proc/net/psched
// (15.625 on every current kernel).
func tickPerUsec() float64 {
	b, err := os.ReadFile("/proc/net/psched")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 2 {
			t2us, e1 := strconv.ParseUint(f[0], 16, 32)
			us2t, e2 := strconv.ParseUint(f[1], 16, 32)
			if e1 == nil && e2 == nil && us2t != 0 {
				return float64(t2us) / float64(us2t)
			}
		}
	}
	return 15.625
}

// netemOptions builds netem's TCA_OPTIONS for q: the fixed tc_netem_qopt
// followed by attributes, laid out as iproute2's tc sends them. dist is
// the jitter distribution table (nil for uniform), seed netem's PRNG seed.
func netemOptions(q netfabric.Impairment, limit uint32, dist []int16, seed uint64, tickUs float64) *nl.RtAttr {
	toTicks := func(d time.Duration) uint32 {
		return uint32(min(float64(d.Microseconds())*tickUs, math.MaxUint32))
	}
	qopt := make([]byte, 24)
	le := binary.LittleEndian
	le.PutUint32(qopt[0:], toTicks(q.Delay))
	le.PutUint32(qopt[4:], limit)
	if q.GE.IsZero() {
		le.PutUint32(qopt[8:], prob(q.Loss))
	}
	if q.Reorder > 0 {
		le.PutUint32(qopt[12:], 1) // gap 1: reorder by probability alone
	}
	le.PutUint32(qopt[16:], prob(q.Duplicate))
	le.PutUint32(qopt[20:], toTicks(q.Jitter))
	opts := nl.NewRtAttr(nl.TCA_OPTIONS, qopt)

	pair := func(a, b uint32) []byte {
		v := make([]byte, 8)
		le.PutUint32(v, a)
		le.PutUint32(v[4:], b)
		return v
	}
	if q.Reorder > 0 {
		opts.AddRtAttr(nl.TCA_NETEM_REORDER, pair(prob(q.Reorder), 0))
	}
	if q.Corrupt > 0 {
		opts.AddRtAttr(nl.TCA_NETEM_CORRUPT, pair(prob(q.Corrupt), 0))
	}
	if !q.GE.IsZero() {
		g := q.GE
		ge := make([]byte, 16)
		le.PutUint32(ge[0:], prob(g.P))
		le.PutUint32(ge[4:], prob(g.R))
		le.PutUint32(ge[8:], math.MaxUint32-prob(g.OneMinusH)) // the kernel wants h, tc takes 1-h
		le.PutUint32(ge[12:], prob(g.OneMinusK))
		loss := opts.AddRtAttr(nl.TCA_NETEM_LOSS|unix.NLA_F_NESTED, nil)
		loss.AddRtAttr(netemLossGE, ge)
	}
	if q.Jitter > 0 && len(dist) > 0 {
		d := make([]byte, 2*len(dist))
		for i, v := range dist {
			le.PutUint16(d[2*i:], uint16(v))
		}
		opts.AddRtAttr(nl.TCA_NETEM_DELAY_DIST, d)
	}
	if bytes := netemRate(q); bytes > 0 {
		// struct tc_netem_rate: rate, overhead, cell size, cell overhead;
		// past 32 bits the rate goes in RATE64, as tc sends it.
		rate := make([]byte, 16)
		le.PutUint32(rate, uint32(min(bytes, math.MaxUint32)))
		opts.AddRtAttr(nl.TCA_NETEM_RATE, rate)
		if bytes >= math.MaxUint32 {
			opts.AddRtAttr(nl.TCA_NETEM_RATE64, nl.Uint64Attr(bytes))
		}
	}
	// Exact nanoseconds, past the 32-bit tick fields' four-minute range.
	opts.AddRtAttr(tcaNetemLatency64, nl.Uint64Attr(uint64(q.Delay)))
	opts.AddRtAttr(tcaNetemJitter64, nl.Uint64Attr(uint64(q.Jitter)))
	opts.AddRtAttr(tcaNetemPrngSeed, nl.Uint64Attr(seed))
	return opts
}

// distDirs are where iproute2 installs its netem distribution tables.
var distDirs = []string{"/usr/lib/x86_64-linux-gnu/tc", "/usr/lib/aarch64-linux-gnu/tc", "/usr/lib/tc", "/usr/lib64/tc", "/usr/share/tc"}

// loadDist reads a netem distribution table (normal, pareto,
// paretonormal) the way tc does. "" and uniform need none.
func loadDist(name string) ([]int16, error) {
	if name == "" || name == netfabric.DistUniform {
		return nil, nil
	}
	for _, dir := range distDirs {
		f, err := os.Open(filepath.Join(dir, name+".dist"))
		if err != nil {
			continue
		}
		defer f.Close()
		var table []int16
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, w := range strings.Fields(line) {
				v, err := strconv.ParseInt(w, 10, 16)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", f.Name(), err)
				}
				table = append(table, int16(v))
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		return table, nil
	}
	return nil, fmt.Errorf("%w: netem distribution %q needs %s.dist from iproute2 (looked in %s)",
		netfabric.ErrUnsupported, name, name, strings.Join(distDirs, ", "))
}

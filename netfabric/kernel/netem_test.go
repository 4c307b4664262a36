package kernel

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"

	"github.com/forgelab/forgelab/netfabric"
)

// tcGolden is what iproute2 6.1's tc sent for
//
//	tc qdisc add dev X root netem delay 20ms 5ms distribution normal \
//	   loss gemodel 1% 20% 70% 0.1% duplicate 1% reorder 25% corrupt 0.5% limit 5000
//
// (captured with strace), up to the distribution table: tc_netem_qopt,
// then REORDER, CORRUPT, LOSS{GE} and the DELAY_DIST header.
const tcGolden = "b4c40400" + "88130000" + "00000000" + "01000000" + "295c8f02" + "2d310100" +
	"0c000300" + "00000040" + "00000000" +
	"0c000400" + "14ae4701" + "00000000" +
	"18000580" + "14000200" + "295c8f02" + "33333333" + "cdcccc4c" + "37894100" +
	"04200200"

func TestNetemOptionsMatchTc(t *testing.T) {
	dist, err := loadDist(netfabric.DistNormal)
	if err != nil {
		t.Skipf("skipped: %v (install iproute2)", err)
	}
	if len(dist) != 4096 || dist[0] != -32768 || dist[1] != -28307 {
		t.Fatalf("normal.dist parsed to %d entries starting %v", len(dist), dist[:2])
	}
	q := netfabric.Impairment{
		Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Distribution: netfabric.DistNormal,
		GE:        netfabric.GilbertElliott{P: 1, R: 20, OneMinusH: 70, OneMinusK: 0.1},
		Duplicate: 1, Reorder: 25, Corrupt: 0.5,
	}
	got := netemOptions(q, 5000, dist, 42, 15.625).Serialize()[4:] // without the TCA_OPTIONS header
	want, _ := hex.DecodeString(tcGolden)
	if !bytes.HasPrefix(got, want) {
		t.Fatalf("netem options differ from tc's:\n got %x\nwant %x", got[:len(want)], want)
	}
	rest := got[len(want):]
	// The table itself: -32768, then -28307 (0x916d), little-endian s16.
	table := rest[:8192]
	if binary.LittleEndian.Uint16(table) != 0x8000 || binary.LittleEndian.Uint16(table[2:]) != 0x916d {
		t.Fatalf("distribution table not carried as tc carries it: %x", table[:8])
	}
	// After the table, forgelab's additions: the order-keeping rate, exact
	// 64-bit delay and jitter, the PRNG seed.
	byType := attrsByType(t, rest[8192:])
	u64 := func(typ uint16) uint64 { return binary.LittleEndian.Uint64(byType[typ]) }
	if u64(nl.TCA_NETEM_RATE64) != orderKeepingRate || len(byType[nl.TCA_NETEM_RATE]) != 16 {
		t.Error("jitter without reorder: no order-keeping rate")
	}
	if u64(tcaNetemLatency64) != uint64(20*time.Millisecond) || u64(tcaNetemJitter64) != uint64(5*time.Millisecond) {
		t.Error("64-bit latency/jitter wrong")
	}
	if u64(tcaNetemPrngSeed) != 42 {
		t.Error("PRNG seed not passed")
	}
}

func TestNetemOptionsPlainLoss(t *testing.T) {
	got := netemOptions(netfabric.Impairment{Loss: 10}, 1000, nil, 1, 15.625).Serialize()[4:]
	le := binary.LittleEndian
	if le.Uint32(got[0:]) != 0 || le.Uint32(got[4:]) != 1000 || le.Uint32(got[8:]) != 429496730 || le.Uint32(got[12:]) != 0 || le.Uint32(got[20:]) != 0 {
		t.Fatalf("qopt for loss 10%%: %x", got[:24])
	}
	attrs, _ := nl.ParseRouteAttr(got[24:])
	for _, a := range attrs {
		switch a.Attr.Type {
		case nl.TCA_NETEM_RATE, nl.TCA_NETEM_RATE64, nl.TCA_NETEM_REORDER, nl.TCA_NETEM_LOSS, nl.TCA_NETEM_DELAY_DIST:
			t.Errorf("loss alone carries attribute %d", a.Attr.Type)
		}
	}
}

func TestProbMatchesTc(t *testing.T) {
	for _, tc := range []struct {
		pct  float64
		want uint32
	}{{1, 0x028f5c29}, {20, 0x33333333}, {0.1, 0x00418937}, {25, 0x40000000}, {0.5, 0x0147ae14}, {100, 0xffffffff}, {0, 0}} {
		if got := prob(tc.pct); got != tc.want {
			t.Errorf("prob(%v) = %#x, want %#x", tc.pct, got, tc.want)
		}
	}
}

func TestLoadDistUnknown(t *testing.T) {
	if d, err := loadDist(""); d != nil || err != nil {
		t.Fatal("uniform needs no table")
	}
	if _, err := loadDist("nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch.dist") {
		t.Fatalf("missing table: %v", err)
	}
}

// netem carries the rate when it shapes anyway: tc's "rate" in bytes per
// second in tc_netem_rate, and past 32 bits in RATE64 as well.
func TestNetemOptionsRate(t *testing.T) {
	for _, tc := range []struct {
		q            netfabric.Impairment
		rate32       uint32
		rate64       uint64 // 0: no RATE64
		wantRateAttr bool
	}{
		{netfabric.Impairment{Delay: time.Millisecond}, 0, 0, false},
		{netfabric.Impairment{Delay: time.Millisecond, RateBits: 1e6}, 125000, 0, true},
		{netfabric.Impairment{Loss: 5, RateBits: 54e6}, 6750000, 0, true},
		{netfabric.Impairment{Loss: 5, RateBits: 40e9}, math.MaxUint32, 5e9, true},
		{netfabric.Impairment{Jitter: time.Millisecond}, math.MaxUint32, orderKeepingRate, true},
		{netfabric.Impairment{Jitter: time.Millisecond, RateBits: 8e6}, 1e6, 0, true},
	} {
		got := netemOptions(tc.q, 1000, nil, 1, 15.625).Serialize()[4:]
		byType := attrsByType(t, got[24:])
		r, ok := byType[nl.TCA_NETEM_RATE]
		if ok != tc.wantRateAttr {
			t.Errorf("%v: rate attribute %v, want %v", tc.q, ok, tc.wantRateAttr)
			continue
		}
		if ok && binary.LittleEndian.Uint32(r) != tc.rate32 {
			t.Errorf("%v: rate %d B/s, want %d", tc.q, binary.LittleEndian.Uint32(r), tc.rate32)
		}
		r64, ok := byType[nl.TCA_NETEM_RATE64]
		if (tc.rate64 != 0) != ok || (ok && binary.LittleEndian.Uint64(r64) != tc.rate64) {
			t.Errorf("%v: RATE64 %x (present %v), want %d", tc.q, r64, ok, tc.rate64)
		}
	}
}

// attrsByType parses netlink attributes into their values by type.
func attrsByType(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		t.Fatal(err)
	}
	byType := map[uint16][]byte{}
	for _, a := range attrs {
		byType[a.Attr.Type] = a.Value
	}
	return byType
}

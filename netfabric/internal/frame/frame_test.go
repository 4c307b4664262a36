package frame

import (
	"encoding/binary"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// gsoTCP builds a TCP super-frame (vnet header + frame) carrying payload
// bytes, as a guest with TSO would hand it over.
func gsoTCP(v6 bool, payload, mss int, flags byte) []byte {
	l3 := 14
	iplen := 20
	if v6 {
		iplen = 40
	}
	l4 := l3 + iplen
	b := make([]byte, VnetLen+l4+20+payload)
	f := b[VnetLen:]
	copy(f, []byte{0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1})
	gso := uint8(unix.VIRTIO_NET_HDR_GSO_TCPV4)
	if v6 {
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
		f[l3] = 0x60
		binary.BigEndian.PutUint16(f[l3+4:], uint16(20+payload))
		f[l3+6], f[l3+7] = ProtoTCP, 64
		f[l3+8+15], f[l3+24+15] = 1, 2 // ::1 -> ::2
		gso = unix.VIRTIO_NET_HDR_GSO_TCPV6
	} else {
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		f[l3] = 0x45
		binary.BigEndian.PutUint16(f[l3+2:], uint16(iplen+20+payload))
		binary.BigEndian.PutUint16(f[l3+4:], 1000)
		f[l3+8], f[l3+9] = 64, ProtoTCP
		copy(f[l3+12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	}
	binary.BigEndian.PutUint16(f[l4:], 40000)
	binary.BigEndian.PutUint16(f[l4+2:], 5201)
	binary.BigEndian.PutUint32(f[l4+4:], 0xfffff000) // wraps inside the frame
	f[l4+12] = 5 << 4
	f[l4+13] = flags
	for i := 0; i < payload; i++ {
		f[l4+20+i] = byte(i * 7)
	}
	b[0] = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
	b[1] = gso
	binary.LittleEndian.PutUint16(b[2:], uint16(l4+20))
	binary.LittleEndian.PutUint16(b[4:], uint16(mss))
	binary.LittleEndian.PutUint16(b[6:], uint16(l4))
	binary.LittleEndian.PutUint16(b[8:], 16)
	return b
}

// checksumOK verifies the IP and L4 checksums of a plain frame.
func checksumOK(t *testing.T, f []byte) {
	t.Helper()
	h, ok := Parse(f)
	if !ok {
		t.Fatal("cannot parse Segment")
	}
	if !h.V6 && Fold(Sum(0, f[h.L3:h.L4])) != 0xffff {
		t.Error("bad IPv4 header checksum")
	}
	var s uint64
	if h.V6 {
		s = Sum(s, f[h.L3+8:h.L3+40])
	} else {
		s = Sum(s, f[h.L3+12:h.L3+20])
	}
	s += uint64(h.Proto) + uint64(len(f)-h.L4)
	if Fold(Sum(s, f[h.L4:])) != 0xffff {
		t.Error("bad TCP/UDP checksum")
	}
}

func TestSegmentTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		const payload, mss = 3000, 1448
		b := gsoTCP(v6, payload, mss, 0x18|0x01|0x80) // PSH ACK FIN CWR
		pkts, bytes := WireSize(b[VnetLen:], GetVnet(b))
		hdr := len(b) - VnetLen - payload
		if pkts != 3 || bytes != 3*hdr+payload {
			t.Errorf("v6=%v: WireSize = %d, %d; want 3, %d", v6, pkts, bytes, 3*hdr+payload)
		}
		var segs [][]byte
		if !Segment(b, func(n int) []byte { return make([]byte, n) }, func(s []byte) { segs = append(segs, s) }) {
			t.Fatalf("v6=%v: Segment refused a TCP super-frame", v6)
		}
		if len(segs) != 3 {
			t.Fatalf("v6=%v: %d segments, want 3", v6, len(segs))
		}
		var data []byte
		for i, s := range segs {
			if !slices.Equal(s[:VnetLen], make([]byte, VnetLen)) {
				t.Errorf("Segment %d keeps a vnet header", i)
			}
			f := s[VnetLen:]
			checksumOK(t, f)
			h, _ := Parse(f)
			seq := binary.BigEndian.Uint32(f[h.L4+4:])
			if want := uint32(0xfffff000) + uint32(i*mss); seq != want {
				t.Errorf("Segment %d: seq %#x, want %#x", i, seq, want)
			}
			fl := f[h.L4+13]
			last := i == len(segs)-1
			if (fl&0x01 != 0) != last || (fl&0x08 != 0) != last {
				t.Errorf("Segment %d: flags %#x: FIN/PSH must be on the last Segment only", i, fl)
			}
			if (fl&0x80 != 0) != (i == 0) {
				t.Errorf("Segment %d: flags %#x: CWR must be on the first Segment only", i, fl)
			}
			if !v6 && binary.BigEndian.Uint16(f[h.L3+4:]) != uint16(1000+i) {
				t.Errorf("Segment %d: IP id not incremented", i)
			}
			data = append(data, f[h.Payload:]...)
		}
		if !slices.Equal(data, b[len(b)-payload:]) {
			t.Errorf("v6=%v: payload not preserved across segments", v6)
		}
	}
}

func TestSegmentRefusesNonGSO(t *testing.T) {
	icmp := make([]byte, VnetLen+14+20+8)
	copy(icmp[VnetLen+12:], []byte{0x08, 0x00, 0x45})
	icmp[VnetLen+14+9] = ProtoICMP
	if Segment(icmp, func(n int) []byte { return make([]byte, n) }, func([]byte) {}) {
		t.Fatal("Segment cut a frame that is not a super-frame")
	}
}

func TestCompleteChecksum(t *testing.T) {
	b := gsoTCP(false, 500, 1448, 0x18)
	b[1] = unix.VIRTIO_NET_HDR_GSO_NONE
	f := b[VnetLen:]
	h, _ := Parse(f)
	IPChecksum(f[h.L3:h.L4])
	// What a sender with checksum offload leaves in the field: the
	// pseudo-header Sum, not complemented.
	ps := Sum(0, f[h.L3+12:h.L3+20]) + ProtoTCP + uint64(len(f)-h.L4)
	binary.BigEndian.PutUint16(f[h.L4+16:], Fold(ps))
	CompleteChecksum(b)
	checksumOK(t, f)
	if b[0]&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
		t.Fatal("NEEDS_CSUM still set")
	}
}

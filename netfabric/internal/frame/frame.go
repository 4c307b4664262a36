// Package frame reads and cuts Ethernet frames as AF_PACKET hands them
// over with PACKET_VNET_HDR: a 10-byte virtio-net header followed by the
// frame, which may be a TSO/GSO super-frame with its checksum left to the
// "NIC". The header is little-endian on the hosts forgelab runs on
// (x86-64, arm64).
package frame

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// VnetLen is the size of the virtio-net header in front of every frame.
const VnetLen = 10

// Vnet is a virtio-net header (struct virtio_net_hdr).
type Vnet struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// GetVnet decodes the header at the start of b.
func GetVnet(b []byte) Vnet {
	return Vnet{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
}

// ClearVnet zeroes the header: a plain frame, checksums complete.
func ClearVnet(b []byte) { clear(b[:VnetLen]) }

// GSO is the segmentation type without the ECN bit.
func (h Vnet) GSO() uint8 { return h.GSOType &^ unix.VIRTIO_NET_HDR_GSO_ECN }

// Headers locates the layers of an Ethernet frame carrying IPv4 or IPv6
// with TCP or UDP directly on top (the only kinds GSO makes).
type Headers struct {
	L3, L4, Payload int // offsets into the frame
	V6              bool
	Proto           uint8
}

const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

func Parse(f []byte) (Headers, bool) {
	var h Headers
	if len(f) < 14 {
		return h, false
	}
	off := 12
	et := binary.BigEndian.Uint16(f[off:])
	for (et == 0x8100 || et == 0x88a8) && len(f) >= off+6 { // VLAN tags
		off += 4
		et = binary.BigEndian.Uint16(f[off:])
	}
	h.L3 = off + 2
	switch et {
	case 0x0800:
		if len(f) < h.L3+20 || f[h.L3]>>4 != 4 {
			return h, false
		}
		h.L4 = h.L3 + int(f[h.L3]&0x0f)*4
		h.Proto = f[h.L3+9]
	case 0x86dd:
		if len(f) < h.L3+40 {
			return h, false
		}
		h.V6 = true
		h.L4 = h.L3 + 40
		h.Proto = f[h.L3+6]
	default:
		return h, false
	}
	switch h.Proto {
	case ProtoTCP:
		if len(f) < h.L4+20 {
			return h, false
		}
		h.Payload = h.L4 + int(f[h.L4+12]>>4)*4
	case ProtoUDP:
		h.Payload = h.L4 + 8
	default:
		h.Payload = h.L4
	}
	return h, h.Payload <= len(f)
}

// WireSize says how many packets and bytes a frame stands for on a real
// wire: a GSO super-frame is several packets, each with its own Headers.
func WireSize(frame []byte, v Vnet) (pkts, bytes int) {
	if v.GSO() == unix.VIRTIO_NET_HDR_GSO_NONE || v.GSOSize == 0 {
		return 1, len(frame)
	}
	h, ok := Parse(frame)
	if !ok {
		return 1, len(frame)
	}
	data := len(frame) - h.Payload
	segs := max(1, (data+int(v.GSOSize)-1)/int(v.GSOSize))
	return segs, segs*h.Payload + data
}

// Segment cuts a TCP or UDP GSO super-frame (vnet header + frame) into
// wire-sized frames with complete checksums, the way the NIC would, and
// hands each to emit (with a zeroed vnet header in front). It reports
// false, emitting nothing, for a frame it cannot cut (the caller then
// forwards it whole).
func Segment(b []byte, alloc func(int) []byte, emit func([]byte)) bool {
	v := GetVnet(b)
	f := b[VnetLen:]
	h, ok := Parse(f)
	if !ok || v.GSOSize == 0 {
		return false
	}
	switch {
	case (v.GSO() == unix.VIRTIO_NET_HDR_GSO_TCPV4 || v.GSO() == unix.VIRTIO_NET_HDR_GSO_TCPV6) && h.Proto == ProtoTCP:
	case v.GSO() == unix.VIRTIO_NET_HDR_GSO_UDP_L4 && h.Proto == ProtoUDP:
	default:
		return false
	}
	hdr := f[:h.Payload]
	data := f[h.Payload:]
	mss := int(v.GSOSize)
	var seq uint32
	var flags uint8
	if h.Proto == ProtoTCP {
		seq = binary.BigEndian.Uint32(f[h.L4+4:])
		flags = f[h.L4+13]
	}
	var ipid uint16
	if !h.V6 {
		ipid = binary.BigEndian.Uint16(f[h.L3+4:])
	}
	for i, off := 0, 0; off < len(data) || (off == 0 && len(data) == 0); i, off = i+1, off+mss {
		n := min(mss, len(data)-off)
		out := alloc(VnetLen + len(hdr) + n)
		ClearVnet(out)
		s := out[VnetLen:]
		copy(s, hdr)
		copy(s[len(hdr):], data[off:off+n])
		l4len := len(hdr) - h.L4 + n
		if h.V6 {
			binary.BigEndian.PutUint16(s[h.L3+4:], uint16(l4len))
		} else {
			binary.BigEndian.PutUint16(s[h.L3+2:], uint16(len(hdr)-h.L3+n))
			binary.BigEndian.PutUint16(s[h.L3+4:], ipid+uint16(i))
			IPChecksum(s[h.L3:h.L4])
		}
		if h.Proto == ProtoTCP {
			binary.BigEndian.PutUint32(s[h.L4+4:], seq+uint32(off))
			fl := flags
			if off+n < len(data) {
				fl &^= 0x01 | 0x08 // FIN and PSH only on the last Segment
			}
			if i > 0 {
				fl &^= 0x80 // CWR only on the first
			}
			s[h.L4+13] = fl
		} else {
			binary.BigEndian.PutUint16(s[h.L4+4:], uint16(l4len))
		}
		L4Checksum(s, h)
		emit(out)
		if n == 0 {
			break
		}
	}
	return true
}

// CompleteChecksum finishes a checksum the sender left to the NIC
// (NEEDS_CSUM) and clears the flag, so the frame can be corrupted or leave
// through a path without offloads. The field already holds the
// pseudo-header Sum, as the virtio spec promises.
func CompleteChecksum(b []byte) {
	v := GetVnet(b)
	if v.Flags&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM == 0 {
		return
	}
	f := b[VnetLen:]
	start, at := int(v.CsumStart), int(v.CsumStart)+int(v.CsumOffset)
	if at+2 > len(f) || start > len(f) {
		return
	}
	c := ^Fold(Sum(0, f[start:]))
	if c == 0 && v.CsumOffset == 6 { // UDP sends 0 as all ones
		c = 0xffff
	}
	binary.BigEndian.PutUint16(f[at:], c)
	b[0] &^= unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
}

// IPChecksum fills in an IPv4 header checksum.
func IPChecksum(ip []byte) {
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^Fold(Sum(0, ip)))
}

// L4Checksum computes a TCP or UDP checksum from scratch.
func L4Checksum(f []byte, h Headers) {
	csAt := h.L4 + 16
	if h.Proto == ProtoUDP {
		csAt = h.L4 + 6
	}
	f[csAt], f[csAt+1] = 0, 0
	l4 := f[h.L4:]
	var s uint64
	if h.V6 {
		s = Sum(s, f[h.L3+8:h.L3+40]) // source and destination
	} else {
		s = Sum(s, f[h.L3+12:h.L3+20])
	}
	s += uint64(h.Proto) + uint64(len(l4))
	c := ^Fold(Sum(s, l4))
	if c == 0 && h.Proto == ProtoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(f[csAt:], c)
}

// Sum adds b to a ones-complement accumulator, 32 bits at a time.
func Sum(s uint64, b []byte) uint64 {
	for len(b) >= 8 {
		s += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// Fold folds a Sum accumulator to 16 bits.
func Fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

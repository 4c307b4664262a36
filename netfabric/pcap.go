package netfabric

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// PcapWriter writes the classic libpcap format (what `wireshark -k -i -`
// and `tcpdump -r -` read) with nanosecond timestamps and Ethernet link
// type. It is a few lines, so netfabric needs no pcap library: gopacket's
// pcapgo would drag golang.org/x/net into the module.
type PcapWriter struct {
	w       io.Writer
	snaplen int
	rec     [16]byte
}

// NewPcapWriter writes the file header to w.
func NewPcapWriter(w io.Writer, snaplen int) (*PcapWriter, error) {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b23c4d) // nanosecond-resolution magic
	binary.LittleEndian.PutUint16(h[4:], 2)          // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], uint32(snaplen))
	binary.LittleEndian.PutUint32(h[20:], 1) // LINKTYPE_ETHERNET
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	return &PcapWriter{w: w, snaplen: snaplen}, nil
}

// WritePacket writes one frame seen at t.
func (p *PcapWriter) WritePacket(t time.Time, frame []byte) error {
	capLen := min(len(frame), p.snaplen)
	binary.LittleEndian.PutUint32(p.rec[0:], uint32(t.Unix()))
	binary.LittleEndian.PutUint32(p.rec[4:], uint32(t.Nanosecond()))
	binary.LittleEndian.PutUint32(p.rec[8:], uint32(capLen))
	binary.LittleEndian.PutUint32(p.rec[12:], uint32(len(frame)))
	if _, err := p.w.Write(p.rec[:]); err != nil {
		return err
	}
	_, err := p.w.Write(frame[:capLen])
	return err
}

package userspace

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/internal/frame"
	"github.com/forgelab/forgelab/netfabric/nstest"
)

// openTapLikeQEMU opens a tap the way QEMU's virtio-net backend does:
// virtio-net headers on, and the offloads a virtio guest accepts.
func openTapLikeQEMU(t *testing.T, name string) *os.File {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ifr, _ := unix.NewIfreq(name)
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR | unix.IFF_ONE_QUEUE)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		t.Fatalf("TUNSETIFF %s: %v", name, err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
		t.Fatal(err)
	}
	unix.SetNonblock(fd, true)
	f := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	return f
}

// TestTapsPassSuperFrames checks the attachment the orchestrator uses:
// persistent taps opened by QEMU, the engine between them. A TSO
// super-frame written by one "VM" arrives whole, GSO header and all, at
// the other.
func TestTapsPassSuperFrames(t *testing.T) {
	nstest.Require(t)
	taps := []string{"fltntapa", "fltntapb"}
	for _, n := range taps {
		_ = netfabric.DeleteLink(n)
		if err := netfabric.EnsureTap(n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netfabric.DeleteLink(n) })
	}
	a, b := openTapLikeQEMU(t, taps[0]), openTapLikeQEMU(t, taps[1])
	serve(t, Config{Seed: 1, Links: netfabric.Links{{Name: "ab", Endpoints: []netfabric.Endpoint{
		{Host: "a", Tap: taps[0]}, {Host: "b", Tap: taps[1]}}}}})

	super := superFrame(30000, 1448)
	if _, err := a.Write(super); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 70000)
	for {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatalf("nothing arrived at the other tap: %v", err)
		}
		got := buf[:n]
		if binary.BigEndian.Uint16(got[frame.VnetLen+12:]) != 0x0800 {
			continue // not ours (the kernel may send nothing else, but be safe)
		}
		v := frame.GetVnet(got)
		if v.GSO() != unix.VIRTIO_NET_HDR_GSO_TCPV4 || v.GSOSize != 1448 {
			t.Fatalf("arrived with GSO type %d size %d, want TCPv4/1448: cut on the way", v.GSO(), v.GSOSize)
		}
		if !bytes.Equal(got[frame.VnetLen:], super[frame.VnetLen:]) {
			t.Fatalf("frame changed on the way (%d bytes in, %d out)", len(super), n)
		}
		return
	}
}

// superFrame is a TCP/IPv4 TSO frame as a guest hands it to its NIC.
func superFrame(payload, mss int) []byte {
	b := make([]byte, frame.VnetLen+14+20+20+payload)
	f := b[frame.VnetLen:]
	copy(f, []byte{0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x00})
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(40+payload))
	ip[8], ip[9] = 64, frame.ProtoTCP
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	frame.IPChecksum(ip[:20])
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp, 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	tcp[12], tcp[13] = 5<<4, 0x10
	b[0] = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
	b[1] = unix.VIRTIO_NET_HDR_GSO_TCPV4
	binary.LittleEndian.PutUint16(b[2:], 54)
	binary.LittleEndian.PutUint16(b[4:], uint16(mss))
	binary.LittleEndian.PutUint16(b[6:], 34)
	binary.LittleEndian.PutUint16(b[8:], 16)
	// Pseudo-header sum in the checksum field, as a sender with offload leaves it.
	ps := frame.Sum(0, ip[12:20]) + frame.ProtoTCP + uint64(20+payload)
	binary.BigEndian.PutUint16(tcp[16:], frame.Fold(ps))
	return b
}

// Frames sent toward a host whose tap has no carrier yet (its VM not
// started: nothing opened the tap) are counted as drop_peer_down, not as
// drop_error: an idle or booting lab must not look faulty.
func TestPeerDownIsNotAnError(t *testing.T) {
	nstest.Require(t)
	taps := []string{"fltnpda", "fltnpdb"}
	for _, n := range taps {
		_ = netfabric.DeleteLink(n)
		if err := netfabric.EnsureTap(n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netfabric.DeleteLink(n) })
	}
	a := openTapLikeQEMU(t, taps[0]) // b stays closed: no carrier
	c := serve(t, Config{Seed: 1, Links: netfabric.Links{{Name: "ab", Endpoints: []netfabric.Endpoint{
		{Host: "a", Tap: taps[0]}, {Host: "b", Tap: taps[1]}}}}})
	f := make([]byte, frame.VnetLen+60)
	copy(f[frame.VnetLen:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 1, 0x88, 0xb5})
	const sent = 20
	for i := 0; i < sent; i++ {
		if _, err := a.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	var k netfabric.Counters
	for i := 0; i < 100; i++ {
		st, err := c.Show(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range st.Links[0].Directions {
			if d.From == "a" && d.Counters != nil {
				k = *d.Counters
			}
		}
		if k.DropPeerDown+k.DropError+k.TxPackets >= sent {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if k.DropError != 0 || k.DropPeerDown < sent {
		t.Errorf("to a tap without carrier: drop_error %d, drop_peer_down %d, tx %d; want every frame as peer_down", k.DropError, k.DropPeerDown, k.TxPackets)
	}
}

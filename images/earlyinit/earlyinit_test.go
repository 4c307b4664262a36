package earlyinit

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Cmdline
	}{
		{"root=UUID=ab-cd rw console=ttyS0,115200 quiet",
			Cmdline{Root: "UUID=ab-cd", FSType: "ext4", Init: "/sbin/init", RootWaitMs: 30000}},
		{"root=/dev/vda1 rootfstype=ext2 rootflags=noatime init=/bin/sh",
			Cmdline{Root: "/dev/vda1", FSType: "ext2", Flags: "noatime", Init: "/bin/sh", RootWaitMs: 30000, ReadOnly: true}},
		{"root=/dev/vda1 rw ro", Cmdline{Root: "/dev/vda1", FSType: "ext4", Init: "/sbin/init", RootWaitMs: 30000, ReadOnly: true}},
	} {
		if got := ParseCmdline(tc.in); got != tc.want {
			t.Errorf("ParseCmdline(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// extImage is the start of an ext4 file system with the given UUID: what
// ExtUUID reads (mkfs.ext4 is not needed for that).
func extImage(uuid [16]byte) []byte {
	b := make([]byte, 4096)
	binary.LittleEndian.PutUint16(b[sbOffset+sbMagicAt:], ext4Magic)
	copy(b[sbOffset+sbUUIDAt:], uuid[:])
	return b
}

func TestFindRootByUUID(t *testing.T) {
	dir := t.TempDir()
	sys, dev := filepath.Join(dir, "sys"), filepath.Join(dir, "dev")
	u := [16]byte{0x7c, 0x2b, 0x9c, 0x6e, 0xcd, 0xb4, 0x41, 0x90, 0x91, 0x51, 0xc8, 0xcd, 0xa6, 0x2c, 0x50, 0x9f}
	for name, data := range map[string][]byte{
		"vda":  make([]byte, 4096), // the disk: MBR, no file system at its start
		"vda1": extImage(u),
		"vdb":  extImage([16]byte{1}), // another ext file system
	} {
		os.MkdirAll(filepath.Join(sys, name), 0o755)
		os.MkdirAll(dev, 0o755)
		if err := os.WriteFile(filepath.Join(dev, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, found, err := FindRoot("UUID=7C2B9C6E-CDB4-4190-9151-C8CDA62C509F", sys, dev)
	if err != nil || !found || got != filepath.Join(dev, "vda1") {
		t.Fatalf("FindRoot = %q, %v, %v; want %s", got, found, err, filepath.Join(dev, "vda1"))
	}
	if _, found, err := FindRoot("UUID=00000000-0000-4000-8000-000000000000", sys, dev); found || err != nil {
		t.Errorf("an absent UUID: found %v, err %v; want not found yet, no error", found, err)
	}
	if _, _, err := FindRoot("", sys, dev); err == nil {
		t.Error("no root= on the command line: want an error")
	}
	if _, err := ExtUUID(bytes.NewReader(make([]byte, 4096))); err == nil {
		t.Error("ExtUUID of zeros: want an error")
	}
}

func TestOrder(t *testing.T) {
	dep := []byte(`kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/drivers/net/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`)
	got, err := Order(dep, []string{"virtio_pci", "virtio-blk"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
		"kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/block/virtio_blk.ko",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Order = %v\nwant %v", got, want)
	}
	if _, err := Order(dep, []string{"ext4"}); err == nil {
		t.Error("a module modules.dep does not list (built in): want an error naming it")
	}
	if _, err := Order([]byte("a.ko: b.ko\nb.ko: a.ko\n"), []string{"a"}); err == nil {
		t.Error("a dependency cycle: want an error")
	}
}

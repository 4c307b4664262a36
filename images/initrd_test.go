package images

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

type cpioEntry struct {
	name         string
	mode         uint64
	rmajor, rmin uint64
	data         []byte
}

// readCPIO parses the newc archive the way the kernel's initramfs
// unpacker does (init/initramfs.c): 110-byte header, name, data, each
// padded to 4 bytes.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("offset %d: no newc header", off)
		}
		field := func(i int) uint64 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		mode, size, rmaj, rmin, namesize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(b[off+110 : off+110+namesize-1])
		dataAt := align(off + 110 + namesize)
		if name == "TRAILER!!!" {
			return out
		}
		out = append(out, cpioEntry{name: name, mode: mode, rmajor: rmaj, rmin: rmin, data: b[dataAt : dataAt+size]})
		off = align(dataAt + size)
	}
}

func TestWriteDirectInitrd(t *testing.T) {
	dir := t.TempDir()
	mods := filepath.Join(dir, "lib/modules/6.1.0-50-cloud-amd64")
	files := map[string]string{
		"modules.dep": "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko\n" +
			"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko\n" +
			"kernel/drivers/virtio/virtio.ko:\nkernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko\n",
		"kernel/drivers/virtio/virtio_pci.ko":   "PCI",
		"kernel/drivers/block/virtio_blk.ko":    "BLK",
		"kernel/drivers/virtio/virtio.ko":       "VIRTIO",
		"kernel/drivers/net/virtio_net.ko":      "NET",
		"../../../usr/local/sbin/guestinit-bin": "\x7fELF init",
	}
	for p, s := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(mods, p)), 0o755)
		if err := os.WriteFile(filepath.Join(mods, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "initrd")
	if err := writeDirectInitrd(out, filepath.Join(dir, "usr/local/sbin/guestinit-bin"), mods); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]cpioEntry{}
	for _, e := range readCPIO(t, b) {
		names = append(names, e.name)
		byName[e.name] = e
	}
	want := []string{"dev", "dev/console", "proc", "sys", "root", "modules",
		"modules/00-virtio.ko", "modules/01-virtio_pci.ko", "modules/02-virtio_blk.ko", "init"}
	if !slices.Equal(names, want) {
		t.Fatalf("initramfs holds %v\nwant %v (dependencies first, nothing else)", names, want)
	}
	if c := byName["dev/console"]; c.mode != 0o020600 || c.rmajor != 5 || c.rmin != 1 {
		t.Errorf("dev/console: mode %o, device %d:%d; want a char device 5:1", c.mode, c.rmajor, c.rmin)
	}
	if i := byName["init"]; i.mode != 0o100755 || !bytes.Equal(i.data, []byte("\x7fELF init")) {
		t.Errorf("init: mode %o, %q; want the init binary, executable", i.mode, i.data)
	}
	if m := byName["modules/02-virtio_blk.ko"]; string(m.data) != "BLK" {
		t.Errorf("virtio_blk.ko holds %q", m.data)
	}
}

package images

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/forgelab/forgelab/images/earlyinit"
)

// directBootModules are the modules a directly booted guest needs before
// its root is mounted: the virtio PCI transport and the virtio disk (ext4
// is built into Debian's kernel), with their dependencies from modules.dep.
var directBootModules = []string{"virtio_pci", "virtio_blk"}

// writeDirectInitrd makes the initramfs forgelab boots the image's kernel
// with: forgelab-guestinit as /init (package earlyinit: it loads the
// modules, mounts the root by UUID and starts systemd) and the modules,
// as an uncompressed cpio (nothing to decompress; QEMU hands it over by
// DMA). modRoot is the tree's lib/modules/KVER.
func writeDirectInitrd(out, initBinary, modRoot string) error {
	dep, err := os.ReadFile(filepath.Join(modRoot, "modules.dep"))
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	mods, err := earlyinit.Order(dep, directBootModules)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := &cpioWriter{w: bufio.NewWriter(f)}
	w.dir("dev")
	w.node("dev/console", 0o020600, 5, 1) // the kernel opens it for init's stdio
	for _, d := range []string{"proc", "sys", "root", strings.TrimPrefix(earlyinit.ModulesDir, "/")} {
		w.dir(d)
	}
	for i, m := range mods {
		data, err := os.ReadFile(filepath.Join(modRoot, m))
		if err != nil {
			f.Close()
			return fmt.Errorf("initramfs: %w", err)
		}
		w.file(fmt.Sprintf("%s/%02d-%s", strings.TrimPrefix(earlyinit.ModulesDir, "/"), i, filepath.Base(m)), 0o644, data)
	}
	initData, err := os.ReadFile(initBinary)
	if err != nil {
		f.Close()
		return fmt.Errorf("initramfs: %w", err)
	}
	w.file("init", 0o755, initData)
	w.trailer()
	if w.err == nil {
		w.err = w.w.Flush()
	}
	if err := f.Close(); w.err == nil {
		w.err = err
	}
	return w.err
}

// cpioWriter writes the "newc" cpio format the kernel unpacks as an
// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
type cpioWriter struct {
	w   *bufio.Writer
	ino int
	n   int64
	err error
}

func (c *cpioWriter) dir(name string) { c.entry(name, 0o040755, 0, 0, nil) }
func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.entry(name, 0o100000|perm, 0, 0, data)
}
func (c *cpioWriter) node(name string, mode, major, minor uint32) {
	c.entry(name, mode, major, minor, nil)
}
func (c *cpioWriter) trailer() { c.entry("TRAILER!!!", 0, 0, 0, nil) }

func (c *cpioWriter) entry(name string, mode, rmajor, rminor uint32, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// Package earlyinit is the whole initramfs of a directly booted forgelab
// image: run as /init (PID 1) by the kernel, it loads the few driver modules
// the root disk needs, finds the root file system by the UUID on the kernel
// command line, mounts it and hands over to the real init (systemd).
//
// It replaces initramfs-tools' shell scripts (busybox, klibc, blkid, dozens
// of scripts and modprobe calls), which cost about a CPU-second of every boot
// under emulation (TCG), for the one case forgelab boots itself: a known
// kernel, virtio disks, ext4 built into the kernel. The image's own /boot
// keeps Debian's initramfs, so the disk still boots elsewhere with GRUB.
package earlyinit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ModulesDir is where the initramfs holds the modules, named so that their
// lexical order is the order to load them (dependencies first).
const ModulesDir = "/modules"

// Cmdline is what early init reads from the kernel command line.
type Cmdline struct {
	Root       string // root=: UUID=..., or a device path
	FSType     string // rootfstype=, ext4 by default
	Flags      string // rootflags=
	ReadOnly   bool   // ro (rw is the default once a word says so; the last wins)
	Init       string // init=, /sbin/init by default
	RootWaitMs int    // how long to wait for the root device
}

// ParseCmdline reads the words early init acts on; others are the kernel's
// or systemd's.
func ParseCmdline(s string) Cmdline {
	c := Cmdline{FSType: "ext4", Init: "/sbin/init", RootWaitMs: 30000, ReadOnly: true}
	for _, w := range strings.Fields(s) {
		k, v, _ := strings.Cut(w, "=")
		switch k {
		case "root":
			c.Root = v
		case "rootfstype":
			c.FSType = v
		case "rootflags":
			c.Flags = v
		case "ro":
			c.ReadOnly = true
		case "rw":
			c.ReadOnly = false
		case "init":
			c.Init = v
		}
	}
	return c
}

// ext4 (and ext2/3) superblock: at byte 1024, magic 0xEF53 at offset 56,
// UUID at offset 104.
const (
	sbOffset    = 1024
	sbMagicAt   = 56
	sbUUIDAt    = 104
	ext4Magic   = 0xEF53
	sbReadBytes = 120
)

// ExtUUID returns the UUID of the ext2/3/4 file system at the start of r,
// in the usual text form.
func ExtUUID(r io.ReaderAt) (string, error) {
	b := make([]byte, sbReadBytes)
	if _, err := r.ReadAt(b, sbOffset); err != nil {
		return "", err
	}
	if binary.LittleEndian.Uint16(b[sbMagicAt:]) != ext4Magic {
		return "", errNotExt
	}
	u := b[sbUUIDAt : sbUUIDAt+16]
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

var errNotExt = errors.New("no ext2/3/4 superblock")

// FindRoot returns the device node (in devDir) that root= names: a path as
// it is, or for UUID=... the block device listed in sysBlock whose ext
// superblock carries that UUID. found is false while no device matches yet
// (its driver may still be probing).
func FindRoot(root, sysBlock, devDir string) (dev string, found bool, err error) {
	uuid, byUUID := strings.CutPrefix(root, "UUID=")
	if !byUUID {
		if root == "" {
			return "", false, errors.New("no root= on the kernel command line")
		}
		_, err := os.Stat(root)
		return root, err == nil, nil
	}
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return "", false, fmt.Errorf("list block devices: %w", err)
	}
	for _, e := range ents {
		path := filepath.Join(devDir, e.Name())
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		got, err := ExtUUID(f)
		f.Close()
		if err == nil && strings.EqualFold(got, uuid) {
			return path, true, nil
		}
	}
	return "", false, nil
}

// Order sorts the modules wanted, with every dependency that depmod's
// modules.dep (the text of lib/modules/VERSION/modules.dep) lists, so that
// each comes after what it needs. Paths are as modules.dep gives them
// (relative to the modules directory).
func Order(modulesDep []byte, wanted []string) ([]string, error) {
	deps := map[string][]string{} // path -> its dependencies' paths
	byName := map[string]string{} // module name -> path
	for _, line := range bytes.Split(modulesDep, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		p := string(k)
		deps[p] = strings.Fields(string(v))
		byName[ModuleName(p)] = p
	}
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(p string) error
	visit = func(p string) error {
		switch state[p] {
		case 1:
			return fmt.Errorf("modules.dep: dependency cycle at %s", p)
		case 2:
			return nil
		}
		state[p] = 1
		for _, d := range deps[p] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[p] = 2
		out = append(out, p)
		return nil
	}
	for _, w := range wanted {
		p, ok := byName[strings.ReplaceAll(w, "-", "_")]
		if !ok {
			return nil, fmt.Errorf("module %s is not in modules.dep (built into the kernel, or not installed?)", w)
		}
		if err := visit(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ModuleName is the module name of a .ko path (dashes as underscores, as
// the kernel names modules).
func ModuleName(path string) string {
	base := filepath.Base(path)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(base, ".ko"), "-", "_")
}

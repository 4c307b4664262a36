package earlyinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Run does early init's work as PID 1 and, when all went well, never
// returns: the process becomes the root file system's init. An error says
// what failed; the caller prints it (the kernel then panics as init exits).
func Run() error {
	for _, d := range []string{"/dev", "/proc", "/sys", "/root"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, m := range []struct {
		dst, fs string
		flags   uintptr
	}{
		{"/dev", "devtmpfs", unix.MS_NOSUID},
		{"/proc", "proc", unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV},
		{"/sys", "sysfs", unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV},
	} {
		if err := unix.Mount(m.fs, m.dst, m.fs, m.flags, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fs, m.dst, err)
		}
	}
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	c := ParseCmdline(string(raw))
	if err := loadModules(ModulesDir); err != nil {
		return err
	}
	dev, err := waitRoot(c)
	if err != nil {
		return err
	}
	var flags uintptr
	if c.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev, "/root", c.FSType, flags, c.Flags); err != nil {
		return fmt.Errorf("mount the root %s (%s) on /root: %w", dev, c.FSType, err)
	}
	// Lstat: init is usually an absolute symlink (/sbin/init ->
	// /lib/systemd/systemd), which resolves only once /root is the root.
	if _, err := os.Lstat(filepath.Join("/root", c.Init)); err != nil {
		return fmt.Errorf("no init on the root file system %s: %w", dev, err)
	}
	for _, d := range []string{"/dev", "/proc", "/sys"} {
		if err := unix.Mount(d, "/root"+d, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s to the root file system: %w", d, err)
		}
	}
	// The initramfs stays in memory unless its files are removed: this
	// program and the modules (its only files).
	os.RemoveAll(ModulesDir)
	os.Remove("/init")
	if err := os.Chdir("/root"); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("switch root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("switch root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	argv := append([]string{c.Init}, os.Args[1:]...)
	return fmt.Errorf("exec %s: %w", c.Init, unix.Exec(c.Init, argv, os.Environ()))
}

// loadModules loads every module in dir, in lexical order (the build names
// them so that dependencies come first).
func loadModules(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("load module %s: %w", n, err)
		}
	}
	return nil
}

// waitRoot waits, bounded, for the root device: its driver probes the
// disk asynchronously after the module loads.
func waitRoot(c Cmdline) (string, error) {
	deadline := time.Now().Add(time.Duration(c.RootWaitMs) * time.Millisecond)
	for {
		dev, found, err := FindRoot(c.Root, "/sys/class/block", "/dev")
		if err != nil {
			return "", err
		}
		if found {
			return dev, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("root %s did not appear within %d ms (is the disk on virtio-blk?)", c.Root, c.RootWaitMs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

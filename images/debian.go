package images

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// The debian-12 recipe: a full-disk image like the official cloud images
// (MBR, one ext4 root partition at 1 MiB, GRUB for BIOS boot), made without
// loop devices: debootstrap into a directory, mkfs.ext4 -d at an offset in a
// raw file, GRUB's boot.img and core.img written in front of the partition,
// then qemu-img convert. Boot is trimmed for emulated (TCG) guests; see
// debian_tree.go.

const (
	debianSuite   = "bookworm"
	debianDiskMiB = 2048 // virtual disk size; the root grows to larger disks at boot
	partStartMiB  = 1
)

// debianPackages are installed on top of debootstrap's minbase in every
// variant: what a lab guest needs (SSH, networkd, the tools network tests
// use, python3 for users' scripts).
var debianPackages = []string{
	"linux-image-cloud-amd64", "systemd-sysv", "udev", "dbus",
	"openssh-server", "sudo", "ca-certificates", "e2fsprogs", "fdisk", "kmod", "procps", "less", "curl", "python3",
	"iproute2", "iputils-ping", "iperf3", "tcpdump", "babeld", "ethtool", "netcat-openbsd", "nftables",
}

// cloudInitPackages make the debian-12-cloud-init variant. debootstrap does
// not resolve virtual packages, so python3-cffi-backend is named for
// cloud-init's dependencies.
var cloudInitPackages = []string{"cloud-init", "netplan.io", "python3-cffi-backend"}

// grubModules are built into core.img, so /boot/grub needs only grub.cfg.
var grubModules = []string{
	"biosdisk", "part_msdos", "ext2", "normal", "linux", "configfile", "search",
	"search_fs_uuid", "echo", "test", "boot", "ls", "cat", "halt", "reboot",
}

const grubDir = "/usr/lib/grub/i386-pc"

// The two variants differ only in what applies the seed at boot.
// debian-12: forgelab-guestinit, a static program run before ssh.service
// (about 0.1 s); debian-12-cloud-init: Debian's cloud-init as shipped (its
// Python costs most of a boot under emulation), for seeds that need more
// than guestinit reads and to keep forgelab's seeds honest against the
// real cloud-init.
var (
	debian12Recipe          = debianRecipe(false)
	debian12CloudInitRecipe = debianRecipe(true)
)

// debianRecipeVersion changes whenever the recipe makes a different image,
// so images built by an older forgelab are rebuilt (Store.Stale).
const debianRecipeVersion = 9

func debianRecipe(cloudInit bool) recipe {
	r := recipe{
		tools: map[string]string{
			"debootstrap": "debootstrap", "chroot": "coreutils", "sfdisk": "fdisk",
			"mkfs.ext4": "e2fsprogs", "grub-mkimage": "grub-pc-bin", "qemu-img": "qemu-utils",
		},
		needRoot: true,
		version:  debianRecipeVersion,
		build: func(b *builder, work string, s *Store) (built, error) {
			return buildDebian12(b, work, s, cloudInit)
		},
	}
	return r
}

func buildDebian12(b *builder, work string, s *Store, cloudInit bool) (built, error) {
	if _, err := os.Stat(filepath.Join(grubDir, "boot.img")); err != nil {
		return built{}, fmt.Errorf("GRUB for BIOS is not installed (%s/boot.img): apt-get install grub-pc-bin", grubDir)
	}
	name, pkgs := "debian-12", debianPackages
	if cloudInit {
		name, pkgs = "debian-12-cloud-init", append(append([]string{}, debianPackages...), cloudInitPackages...)
	}
	// forgelab-guestinit applies the seed in debian-12, and is the
	// initramfs of direct boot in both variants.
	guestInit, err := s.guestInitBinary()
	if err != nil {
		return built{}, err
	}
	cache := filepath.Join(s.Dir, "cache", "debs")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return built{}, err
	}
	mirror, from := debianMirror()
	tree := filepath.Join(work, "tree")

	// debootstrap mounts /proc and /sys in the target; in a private mount
	// namespace those mounts die with it, whatever happens to it.
	b.step("debootstrap: Debian %s (minbase + %d packages) from %s (%s); .debs cached in %s",
		debianSuite, len(pkgs), mirror, from, cache)
	args := []string{"--variant=minbase", "--components=main", "--cache-dir=" + cache,
		"--include=" + strings.Join(pkgs, ","), debianSuite, tree, mirror}
	env := []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8", "LANG=C.UTF-8"}
	// No fsync per file (the tree is thrown away on failure anyway), and no
	// initramfs while the kernel is installed: it is made once, below, with
	// only the disk drivers.
	dbEnv := append([]string{"DPKG_FORCE=unsafe-io", "INITRD=No"}, env...)
	cmd := privateMounts("debootstrap", args...)
	if err := b.run(dbEnv, cmd[0], cmd[1:]...); err != nil {
		return built{}, fmt.Errorf("debootstrap: %w", err)
	}

	fsUUID, err := newUUID()
	if err != nil {
		return built{}, err
	}
	kver, err := kernelVersion(tree)
	if err != nil {
		return built{}, err
	}
	seedBy := "forgelab-guestinit"
	if cloudInit {
		seedBy = "cloud-init"
	}
	b.step("configuring the guest: %s, networkd, ssh, serial console, boot trims (kernel %s)", seedBy, kver)
	cfg := debianConfig{fsUUID: fsUUID, mirror: mirror, kernel: kver, cloudInit: cloudInit}
	if !cloudInit {
		cfg.guestInit = guestInit
	}
	if err := configureDebianTree(tree, cfg); err != nil {
		return built{}, fmt.Errorf("configure tree: %w", err)
	}
	b.step("initramfs for GRUB: virtio drivers only")
	olds, _ := filepath.Glob(filepath.Join(tree, "boot", "initrd.img-*"))
	for _, old := range olds {
		if err := os.Remove(old); err != nil {
			return built{}, err
		}
	}
	cmd = privateMounts("chroot", tree, "update-initramfs", "-c", "-k", kver)
	if err := b.run(env, cmd[0], cmd[1:]...); err != nil {
		return built{}, fmt.Errorf("update-initramfs: %w", err)
	}
	b.step("trimming documentation, manuals, translations and apt lists")
	if err := trimDebianTree(tree); err != nil {
		return built{}, fmt.Errorf("trim tree: %w", err)
	}
	if err := finishDebianTree(tree); err != nil {
		return built{}, err
	}
	if mps, err := mountsUnder(tree); err != nil || len(mps) > 0 {
		return built{}, fmt.Errorf("tree still has mounts %v (%v)", mps, err)
	}
	// The kernel goes next to the image, for direct kernel boot
	// (Image.Boot), with an initramfs of its own: forgelab-guestinit as
	// /init and the disk drivers (package earlyinit), instead of
	// initramfs-tools' scripts, which the disk's GRUB boot keeps.
	b.step("initramfs for direct boot: forgelab-guestinit as /init, %s", strings.Join(directBootModules, ", "))
	if err := copyFile(filepath.Join(tree, "boot", "vmlinuz-"+kver), filepath.Join(work, "vmlinuz")); err != nil {
		return built{}, fmt.Errorf("keep the kernel for direct boot: %w", err)
	}
	if err := writeDirectInitrd(filepath.Join(work, "initrd"), guestInit, filepath.Join(tree, "lib", "modules", kver)); err != nil {
		return built{}, fmt.Errorf("direct boot: %w", err)
	}

	raw := filepath.Join(work, "disk.raw")
	size := int64(debianDiskMiB) << 20
	b.step("partitioning: %d MiB disk, MBR, one bootable ext4 partition at %d MiB", debianDiskMiB, partStartMiB)
	f, err := os.Create(raw)
	if err != nil {
		return built{}, err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return built{}, err
	}
	diskID, err := randomHex(4)
	if err != nil {
		return built{}, err
	}
	layout := fmt.Sprintf("label: dos\nlabel-id: 0x%s\nstart=%d, type=83, bootable\n", diskID, partStartMiB<<20/512)
	if err := b.runIn(strings.NewReader(layout), nil, "sfdisk", "--no-reread", "--no-tell-kernel", raw); err != nil {
		return built{}, fmt.Errorf("sfdisk: %w", err)
	}

	// The partition runs to the end of the disk; mkfs.ext4 at an offset does
	// not know that, so it gets the size in 4 KiB blocks.
	blocks := (size - partStartMiB<<20) / 4096
	b.step("making the ext4 root file system from the tree (%d MiB)", (size-partStartMiB<<20)>>20)
	if err := b.run(nil, "mkfs.ext4", "-q", "-F", "-L", "root", "-U", fsUUID, "-b", "4096", "-e", "remount-ro",
		"-E", fmt.Sprintf("offset=%d", partStartMiB<<20), "-d", tree, raw, fmt.Sprint(blocks)); err != nil {
		return built{}, fmt.Errorf("mkfs.ext4: %w", err)
	}

	b.step("installing GRUB for BIOS boot (i386-pc, modules built in)")
	core := filepath.Join(work, "core.img")
	gargs := append([]string{"-O", "i386-pc", "-d", grubDir, "-o", core, "-p", "(,msdos1)/boot/grub"}, grubModules...)
	if err := b.run(nil, "grub-mkimage", gargs...); err != nil {
		return built{}, fmt.Errorf("grub-mkimage: %w", err)
	}
	if err := writeBootCode(raw, filepath.Join(grubDir, "boot.img"), core, partStartMiB<<20); err != nil {
		return built{}, err
	}

	b.step("converting to qcow2 (compressed)")
	out := filepath.Join(work, "image.qcow2")
	if err := b.run(nil, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", "-o", "compression_type=zstd", raw, out); err != nil {
		// Older qemu-img without zstd: zlib compression.
		os.Remove(out)
		if err := b.run(nil, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", raw, out); err != nil {
			return built{}, fmt.Errorf("qemu-img convert: %w", err)
		}
	}
	os.Remove(raw)
	res := built{qcow2: out, source: fmt.Sprintf("recipe %s (Debian %s from %s, kernel %s, seed applied by %s)", name, debianSuite, mirror, kver, seedBy),
		kernel: filepath.Join(work, "vmlinuz"), initrd: filepath.Join(work, "initrd"), cmdline: kernelCmdline(fsUUID)}
	return res, nil
}

// privateMounts wraps a command so that mounts it makes stay in a private
// mount namespace (unshare from util-linux), when unshare is available.
func privateMounts(name string, args ...string) []string {
	if _, err := exec.LookPath("unshare"); err != nil {
		return append([]string{name}, args...)
	}
	return append([]string{"unshare", "--mount", "--propagation", "private", "--", name}, args...)
}

// writeBootCode puts GRUB's boot.img in the MBR (its first 440 bytes: the
// disk signature and partition table stay) and core.img right after it, in
// the gap before the first partition. grub-mkimage has already written
// core.img's own length into its first sector, and boot.img's default is to
// load it from sector 1, so nothing needs patching.
func writeBootCode(disk, bootImg, coreImg string, gap int64) error {
	boot, err := os.ReadFile(bootImg)
	if err != nil {
		return err
	}
	core, err := os.ReadFile(coreImg)
	if err != nil {
		return err
	}
	if len(boot) != 512 {
		return fmt.Errorf("%s: %d bytes, want 512", bootImg, len(boot))
	}
	if int64(len(core)) > gap-512 {
		return fmt.Errorf("GRUB core.img is %d bytes, more than the %d bytes before the partition", len(core), gap-512)
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(boot[:440], 0); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteAt(core, 512); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func kernelVersion(tree string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(tree, "boot", "vmlinuz-*"))
	if len(m) == 0 {
		return "", fmt.Errorf("no kernel in %s/boot (was linux-image-cloud-amd64 installed?)", tree)
	}
	sort.Strings(m)
	return strings.TrimPrefix(filepath.Base(m[len(m)-1]), "vmlinuz-"), nil
}

func newUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]), nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", b), nil
}

// debianMirror returns the Debian mirror this machine's apt uses for the
// bookworm suite (FORGELAB_DEBIAN_MIRROR overrides), and where it was found.
func debianMirror() (mirror, from string) {
	if m := os.Getenv("FORGELAB_DEBIAN_MIRROR"); m != "" {
		return m, "FORGELAB_DEBIAN_MIRROR"
	}
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	for _, f := range files {
		for _, src := range readAptSources(f) {
			if src.suite == debianSuite && src.hasMain && (strings.HasPrefix(src.uri, "http://") || strings.HasPrefix(src.uri, "https://")) {
				return strings.TrimSuffix(src.uri, "/"), f
			}
		}
	}
	return "http://deb.debian.org/debian", "default"
}

type aptSource struct {
	uri, suite string
	hasMain    bool
}

// readAptSources reads one-line (.list) and deb822 (.sources) apt sources,
// binary ("deb") entries only.
func readAptSources(path string) []aptSource {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []aptSource
	if strings.HasSuffix(path, ".sources") {
		stanza := map[string]string{}
		flush := func() {
			defer func() { stanza = map[string]string{} }()
			if !strings.Contains(" "+stanza["types"]+" ", " deb ") || strings.EqualFold(stanza["enabled"], "no") {
				return
			}
			main := strings.Contains(" "+stanza["components"]+" ", " main ")
			for _, u := range strings.Fields(stanza["uris"]) {
				for _, s := range strings.Fields(stanza["suites"]) {
					out = append(out, aptSource{uri: u, suite: s, hasMain: main})
				}
			}
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if strings.TrimSpace(line) == "" {
				flush()
				continue
			}
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				stanza[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		flush()
		return out
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") { // options: [arch=amd64 signed-by=...]
			for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
				fields = fields[1:]
			}
			if len(fields) > 0 {
				fields = fields[1:]
			}
		}
		if len(fields) < 2 {
			continue
		}
		main := false
		for _, c := range fields[2:] {
			main = main || c == "main"
		}
		out = append(out, aptSource{uri: fields[0], suite: fields[1], hasMain: main})
	}
	return out
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

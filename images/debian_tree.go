package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// What the debian-12 image changes in a freshly debootstrapped tree. Every
// item is here for a reason, given next to it; the boot-time ones were each
// measured under TCG (see the package's build notes in the report/README).

type debianConfig struct {
	fsUUID, mirror, kernel string
	// cloudInit: the seed is applied by cloud-init as Debian ships it;
	// otherwise by guestInit, the static forgelab-guestinit program.
	cloudInit bool
	guestInit string
}

// kernelCmdline: serial console only (no VGA console to emulate), classic
// ethN names (the seed renames NICs by MAC anyway), rw root so nothing has
// to remount it, quiet so the emulated UART is not the bottleneck, no crypto
// self-tests and no kernel audit (about 0.5 s of kernel boot under TCG).
// For an emulated lab guest also: the TSC as a trusted clocksource (under
// TCG the watchdog otherwise moves the guest to the HPET, and every
// clock_gettime becomes a syscall and an emulated MMIO read), no timer
// check, no speculative-execution mitigations and no KASLR (kernel work,
// not protection a lab VM needs), one UART probed, no PS/2 mouse probe.
func kernelCmdline(fsUUID string) string {
	return "root=UUID=" + fsUUID + " rw console=ttyS0,115200 net.ifnames=0 quiet cryptomgr.notests audit=0" +
		" tsc=reliable no_timer_check mitigations=off nokaslr 8250.nr_uarts=1 i8042.noaux"
}

// cloudInitCfg: the debian-12-cloud-init variant runs cloud-init as Debian
// ships it; it only learns where the seed is, as any NoCloud user sets it.
const cloudInitCfg = `# forgelab: NoCloud seed disk (volume id cidata)
datasource_list: [ NoCloud, None ]
`

// guestInitUnit runs forgelab-guestinit before anything reads what it
// writes: the .link files (systemd-udevd names the NICs at coldplug, and
// the virtio NIC driver is loaded only then), the .network files, the host
// key and the users (ssh.service). It needs no udev and no mounts: the
// kernel makes the seed disk's node, and the root is mounted read-write.
const guestInitUnit = `[Unit]
Description=Apply the NoCloud seed (forgelab-guestinit)
DefaultDependencies=no
Before=systemd-udev-trigger.service systemd-networkd.service ssh.service sysinit.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/forgelab-guestinit
StandardOutput=journal+console

[Install]
WantedBy=sysinit.target
`

// sshUnit replaces Debian's ssh.service (a drop-in cannot remove an
// ordering): sshd listens on every address, so it need not wait for
// network.target and starts while networkd brings the NICs up; no
// `sshd -t` self-test before the start (a whole sshd start-up under TCG);
// and no re-exec of sshd for every connection (-r: each re-exec loads and
// links sshd again, the cost of a start-up under TCG, for address-space
// re-randomisation a lab VM does not need).
const sshUnit = `[Unit]
Description=OpenBSD Secure Shell server (forgelab: not ordered after network.target)
Documentation=man:sshd(8) man:sshd_config(5)
After=auditd.service
ConditionPathExists=!/etc/ssh/sshd_not_to_be_run

[Service]
EnvironmentFile=-/etc/default/ssh
ExecStart=/usr/sbin/sshd -D -r $SSHD_OPTS
ExecReload=/usr/sbin/sshd -t
ExecReload=/bin/kill -HUP $MAINPID
KillMode=process
Restart=on-failure
RestartPreventExitStatus=255
Type=notify
RuntimeDirectory=sshd
RuntimeDirectoryMode=0755

[Install]
WantedBy=multi-user.target
Alias=sshd.service
`

// growroot replaces cloud-init's growpart and resizefs modules (about 0.8 s
// per boot under TCG even with nothing to do): shell built-ins only when
// there is nothing to grow, and three programs (not the growpart script's
// dozens) when there is.
const growrootScript = `#!/bin/sh
# forgelab: grow the root partition and file system when the VM's disk is
# larger than the image (what cloud-init's growpart and resizefs do),
# costing only shell built-ins when there is nothing to grow.
set -eu
majmin=
while read -r _ _ mm _ mp _; do
	if [ "$mp" = / ]; then majmin=$mm; fi
done < /proc/self/mountinfo
[ -n "$majmin" ] && [ -e "/sys/dev/block/$majmin/partition" ] || exit 0
cd -P "/sys/dev/block/$majmin"
part=${PWD##*/}
read -r pn < partition
read -r start < start
read -r size < size
cd -P ..
disk=${PWD##*/}
read -r total < size
# less than 8 MiB unused after the partition: nothing to do
[ $((total - start - size)) -gt 16384 ] || exit 0
# The partition keeps its start and takes the rest of the disk; the kernel
# learns its new size (partx), then the mounted file system grows online.
echo ", +" | sfdisk --quiet --no-reread --no-tell-kernel -N "$pn" "/dev/$disk"
partx --update --nr "$pn" "/dev/$disk"
resize2fs "/dev/$part"
`

const growrootUnit = `[Unit]
Description=Grow the root partition and file system to the disk
DefaultDependencies=no
After=local-fs.target systemd-tmpfiles-setup.service
Before=sysinit.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
Environment=TMPDIR=/run
ExecStart=/usr/local/sbin/forgelab-growroot
RemainAfterExit=yes

[Install]
WantedBy=sysinit.target
`

// The initramfs runs without udev (starting udevd, triggering and settling
// every device costs about a second of the kernel phase under TCG);
// systemd-udevd handles all devices after switch_root as usual.
const initramfsNoUdevTop = `#!/bin/sh
# forgelab: no udev in the initramfs. The disk drivers are loaded from
# /etc/initramfs-tools/modules, the kernel makes the device nodes, and blkid
# finds root=UUID=; systemd-udevd handles every device after switch_root.
PREREQS=""
prereqs() { echo "$PREREQS"; }
case "$1" in
prereqs)
	prereqs
	exit 0
	;;
esac
if [ -w /sys/kernel/uevent_helper ]; then
	echo > /sys/kernel/uevent_helper
fi
`

const initramfsNoUdevBottom = `#!/bin/sh
# forgelab: no udev in the initramfs (see init-top/udev): hand /dev over.
PREREQS=""
prereqs() { echo "$PREREQS"; }
case "$1" in
prereqs)
	prereqs
	exit 0
	;;
esac
mount -n -o move /dev "${rootmnt:?}/dev" || mount -n --move /dev "${rootmnt}/dev"
if command -v nuke >/dev/null; then
	nuke /dev
else
	rm -rf /dev
fi
ln -s "${rootmnt}/dev" /dev
`

const udevTriggerDropIn = `# forgelab: coldplug only what a lab VM needs at boot (boot time under emulation)
[Service]
ExecStart=
ExecStart=-udevadm trigger --type=subsystems --action=add
ExecStart=-udevadm trigger --type=devices --action=add --subsystem-match=block --subsystem-match=net --subsystem-match=virtio --subsystem-match=input --subsystem-match=misc
ExecStart=-udevadm trigger --type=devices --action=add --subsystem-match=tty --subsystem-match=acpi --sysname-match=ttyS0 --sysname-match=LNXPWRBN:*
`

// afterSSH are ordered after ssh.service (see configureDebianTree).
var afterSSH = []string{"systemd-logind.service", "dbus.service", "serial-getty@ttyS0.service"}

// maskedUnits cost boot time and do nothing a lab VM needs.
var maskedUnits = []string{
	// background jobs
	"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
	"e2scrub_reap.service", "fstrim.timer", "man-db.timer", "logrotate.timer",
	// daily /tmp clean-up: a timer that could fire during a measured run
	// (the quiet check of run and bench lists active timers as noise)
	"systemd-tmpfiles-clean.timer",
	// file systems and modules nobody uses here (static device nodes still
	// autoload fuse, loop, tun on first open)
	"modprobe@drm.service", "modprobe@dm_mod.service", "modprobe@efi_pstore.service",
	"modprobe@fuse.service", "modprobe@loop.service", "modprobe@configfs.service",
	"sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
	"sys-fs-fuse-connections.mount", "dev-hugepages.mount",
	"proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount", "systemd-binfmt.service",
	"systemd-pstore.service",
	// one-shots that do nothing useful on a fresh VM: root is mounted rw by
	// the kernel, the kernel RNG needs no seed file, the journal stays in
	// memory, nobody reads utmp boot records, and /run/nologin is never made
	"systemd-remount-fs.service", "systemd-random-seed.service", "systemd-journal-flush.service",
	"systemd-update-utmp.service", "systemd-update-utmp-runlevel.service", "systemd-user-sessions.service",
	// VGA console login: the serial console has one
	"getty@tty1.service",
}

// maskedGenerators run at every boot and every daemon-reload (each a
// program start under TCG). The getty generator's one product, the serial
// console's getty, is enabled statically instead.
var maskedGenerators = []string{
	"systemd-cryptsetup-generator", "systemd-integritysetup-generator", "systemd-veritysetup-generator",
	"systemd-hibernate-resume-generator", "systemd-gpt-auto-generator", "systemd-system-update-generator",
	"systemd-run-generator", "systemd-rc-local-generator", "systemd-debug-generator", "systemd-getty-generator",
	// The root is mounted read-write by the kernel and fstab holds nothing
	// else; babeld, the one System V script without a native unit, gets
	// one (babeldUnit).
	"systemd-fstab-generator", "systemd-sysv-generator",
}

// maskedTmpfiles are tmpfiles.d entries for what a lab VM lacks: X11
// sockets, a persistent journal, pstore (masked above).
var maskedTmpfiles = []string{"x11.conf", "journal-nocow.conf", "systemd-pstore.conf", "systemd-nologin.conf"}

// babeldUnit replaces what systemd-sysv-generator made of Debian's
// /etc/init.d/babeld: same defaults file, not started at boot.
const babeldUnit = `[Unit]
Description=Babel routing daemon (forgelab: a native unit for Debian's System V script)
After=network.target

[Service]
EnvironmentFile=-/etc/default/babeld
StateDirectory=babeld
ExecStart=/usr/sbin/babeld $DAEMON_ARGS $INTERFACES
`

// blacklistedModules: nested KVM under emulation, legacy devices, and the IDE
// driver (forgelab attaches disks and the seed on virtio; probing the PIIX
// IDE controller of the pc machine costs about a second under TCG).
var blacklistedModules = []string{
	"kvm", "kvm_amd", "kvm_intel", "powernow_k8", "floppy", "pcspkr",
	"ata_piix", "ata_generic", "pata_acpi",
}

// initramfsModules: the initramfs loads only disk drivers (MODULES=list).
var initramfsModules = []string{"virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod"}

func configureDebianTree(root string, c debianConfig) error {
	t := tree{root}
	var errs []error
	do := func(err error) { errs = append(errs, err) }

	// Kernel and boot loader: /vmlinuz and /initrd.img follow kernel
	// upgrades (linux-update-symlinks), and grub.cfg boots them directly.
	do(t.symlink("vmlinuz", "boot/vmlinuz-"+c.kernel))
	do(t.symlink("initrd.img", "boot/initrd.img-"+c.kernel))
	do(t.write("etc/kernel-img.conf", "do_symlinks = yes\nlink_in_boot = no\n", 0o644))
	do(t.write("boot/grub/grub.cfg", "# forgelab: no menu, no timeout\n"+
		"linux /vmlinuz "+kernelCmdline(c.fsUUID)+"\ninitrd /initrd.img\nboot\n", 0o644))
	do(t.write("etc/fstab", "# forgelab: the kernel mounts the root read-write (root=UUID=... rw)\n"+
		"UUID="+c.fsUUID+" / ext4 rw,errors=remount-ro 0 0\n", 0o644))

	// Identity: every VM makes its own machine-id and gets its host key and
	// hostname from the seed.
	for _, k := range t.glob("etc/ssh/ssh_host_*") {
		do(t.remove(k))
	}
	do(t.write("etc/machine-id", "", 0o444))
	do(t.remove("var/lib/dbus/machine-id"))
	do(t.write("etc/hostname", "debian\n", 0o644))
	do(t.write("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n", 0o644))
	if fi, err := os.Lstat(t.abs("etc/resolv.conf")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		do(t.write("etc/resolv.conf", "", 0o644)) // debootstrap copied the build host's
	}
	security := "http://deb.debian.org/debian-security"
	if strings.HasSuffix(c.mirror, "/debian") {
		security = c.mirror + "-security"
	}
	do(t.write("etc/apt/sources.list", fmt.Sprintf("deb %[1]s %[2]s main\ndeb %[1]s %[2]s-updates main\ndeb %[3]s %[2]s-security main\n",
		c.mirror, debianSuite, security), 0o644))
	do(t.write("etc/dpkg/dpkg.cfg.d/forgelab-nodoc", "# forgelab: keep the image small\n"+
		"path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\n"+
		"path-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\npath-include /usr/share/locale/locale.alias\n", 0o644))

	// What applies the seed at boot.
	if c.cloudInit {
		do(t.write("etc/cloud/cloud.cfg.d/90-forgelab.cfg", cloudInitCfg, 0o644))
	} else {
		do(t.copyFile("usr/local/sbin/forgelab-guestinit", c.guestInit, 0o755))
		do(t.write("etc/systemd/system/forgelab-guestinit.service", guestInitUnit, 0o644))
		do(t.symlink("etc/systemd/system/sysinit.target.wants/forgelab-guestinit.service", "/etc/systemd/system/forgelab-guestinit.service"))
	}

	// Network: systemd-networkd (forgelab-guestinit or netplan renders for it); wait-online is
	// satisfied by any one link, and quickly gives up.
	do(t.symlink("etc/systemd/system/multi-user.target.wants/systemd-networkd.service", "/lib/systemd/system/systemd-networkd.service"))
	do(t.symlink("etc/systemd/system/sockets.target.wants/systemd-networkd.socket", "/lib/systemd/system/systemd-networkd.socket"))
	do(t.symlink("etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service", "/lib/systemd/system/systemd-networkd-wait-online.service"))
	do(t.symlink("etc/systemd/system/dbus-org.freedesktop.network1.service", "/lib/systemd/system/systemd-networkd.service"))
	do(t.write("etc/systemd/system/systemd-networkd-wait-online.service.d/forgelab.conf",
		"[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=15\n", 0o644))

	// SSH: only the seed's ed25519 host key, keys only, no self-test
	// before start (it costs a full sshd start-up under TCG).
	do(t.write("etc/ssh/sshd_config.d/forgelab.conf", "# forgelab\nHostKey /etc/ssh/ssh_host_ed25519_key\n"+
		"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n", 0o644))
	do(t.write("etc/systemd/system/ssh.service", sshUnit, 0o644))
	// udev's coldplug processes only the devices a lab VM needs at boot
	// (disks, NICs and their virtio devices, the ACPI power button, whose
	// driver loads on its coldplug event, so that a graceful shutdown
	// works, its input device, misc nodes, the serial console): of about
	// 240 devices, the
	// ACPI, virtual-console, platform and memory ones cost about a second of
	// the one emulated vCPU and nothing uses them. Hotplugged devices are
	// handled as usual.
	do(t.write("etc/systemd/system/systemd-udev-trigger.service.d/forgelab.conf", udevTriggerDropIn, 0o644))
	// What a lab reaches the guest through comes first: logind, D-Bus and
	// the serial getty start once sshd is up, instead of sharing the one
	// emulated vCPU with it (about 5 s of a boot under TCG).
	for _, u := range afterSSH {
		do(t.write("etc/systemd/system/"+u+".d/forgelab-after-ssh.conf",
			"# forgelab: start once sshd is up (boot time under emulation)\n[Unit]\nAfter=ssh.service\n", 0o644))
	}
	// No dynamic motd at SSH logins (run-parts and uname on every login).
	do(t.edit("etc/pam.d/sshd", func(s string) string {
		return regexp.MustCompile(`(?m)^(session\s+optional\s+pam_motd\.so\s+motd=/run/motd\.dynamic.*)$`).
			ReplaceAllString(s, "# forgelab: no dynamic motd (run-parts and uname on every login)\n# $1")
	}))

	// Boot trims.
	for _, u := range maskedUnits {
		do(t.symlink("etc/systemd/system/"+u, "/dev/null"))
	}
	for _, w := range []string{"timers.target.wants", "multi-user.target.wants", "sysinit.target.wants", "getty.target.wants"} {
		for _, u := range maskedUnits {
			do(t.remove("etc/systemd/system/" + w + "/" + u))
		}
	}
	for _, g := range maskedGenerators {
		do(t.symlink("etc/systemd/system-generators/"+g, "/dev/null"))
	}
	do(t.symlink("etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service", "/lib/systemd/system/serial-getty@.service"))
	for _, f := range maskedTmpfiles {
		do(t.symlink("etc/tmpfiles.d/"+f, "/dev/null"))
	}
	do(t.remove("etc/modules-load.d/modules.conf")) // comments only; skips systemd-modules-load
	do(t.write("etc/systemd/journald.conf.d/forgelab.conf", "[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n", 0o644))
	do(t.removeAll("var/log/journal"))
	do(t.write("usr/local/sbin/forgelab-growroot", growrootScript, 0o755))
	do(t.write("etc/systemd/system/forgelab-growroot.service", growrootUnit, 0o644))
	do(t.symlink("etc/systemd/system/sysinit.target.wants/forgelab-growroot.service", "/etc/systemd/system/forgelab-growroot.service"))
	var bl strings.Builder
	bl.WriteString("# forgelab: not needed in a lab VM, and each costs boot time under emulation\n")
	for _, m := range blacklistedModules {
		bl.WriteString("blacklist " + m + "\n")
	}
	do(t.write("etc/modprobe.d/forgelab.conf", bl.String(), 0o644))
	// Daemons installed as tools, not started at boot (babeld has only a
	// System V script: drop its start links and give it a native unit, so
	// `systemctl start babeld` works without the SysV generator).
	for _, l := range t.glob("etc/rc[2-5].d/S[0-9][0-9]babeld") {
		do(t.remove(l))
	}
	do(t.write("etc/systemd/system/babeld.service", babeldUnit, 0o644))

	// initramfs: just the disk drivers.
	if err := t.edit("etc/initramfs-tools/initramfs.conf", func(s string) string {
		s = regexp.MustCompile(`(?m)^MODULES=.*$`).ReplaceAllString(s, "MODULES=list")
		return regexp.MustCompile(`(?m)^COMPRESS=.*$`).ReplaceAllString(s, "COMPRESS=gzip")
	}); err != nil {
		do(err)
	}
	do(t.write("etc/initramfs-tools/modules", "# forgelab: disk drivers (MODULES=list)\n"+strings.Join(initramfsModules, "\n")+"\n", 0o644))
	// No udev in the initramfs: the listed drivers are loaded explicitly,
	// the kernel makes the device nodes, blkid resolves root=UUID=. These
	// replace the udev package's initramfs scripts of the same name.
	do(t.write("etc/initramfs-tools/scripts/init-top/udev", initramfsNoUdevTop, 0o755))
	do(t.write("etc/initramfs-tools/scripts/init-bottom/udev", initramfsNoUdevBottom, 0o755))
	return errors.Join(errs...)
}

// trimDebianTree removes what a lab VM does not read: documentation (the
// copyright files stay), manuals, translations, apt's lists and caches, and
// the logs of the build itself.
func trimDebianTree(root string) error {
	t := tree{root}
	var errs []error
	for _, d := range t.glob("usr/share/doc/*") {
		if fi, err := os.Lstat(t.abs(d)); err == nil && fi.IsDir() {
			ents, _ := os.ReadDir(t.abs(d))
			for _, e := range ents {
				if e.Name() != "copyright" {
					errs = append(errs, t.removeAll(d+"/"+e.Name()))
				}
			}
		}
	}
	for _, pat := range []string{"usr/share/man/*", "usr/share/info/*", "usr/share/lintian/*",
		"var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/cache/debconf/*-old", "var/lib/dpkg/*-old",
		"var/log/*.log", "var/log/apt/*", "tmp/*", "var/tmp/*"} {
		for _, p := range t.glob(pat) {
			errs = append(errs, t.removeAll(p))
		}
	}
	for _, p := range t.glob("usr/share/locale/*") {
		if filepath.Base(p) != "locale.alias" {
			errs = append(errs, t.removeAll(p))
		}
	}
	for _, p := range t.glob("var/lib/apt/lists/*") {
		if b := filepath.Base(p); b != "lock" && b != "partial" {
			errs = append(errs, t.removeAll(p))
		}
	}
	return errors.Join(errs...)
}

// finishDebianTree marks /etc and /var as up to date with /usr, so the
// ConditionNeedsUpdate units (sysusers, ldconfig, hwdb, catalog) skip at boot.
func finishDebianTree(root string) error {
	now := time.Now()
	for _, p := range []string{"etc/.updated", "var/.updated"} {
		if err := (tree{root}).write(p, "# forgelab: image build\n", 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(filepath.Join(root, p), now, now); err != nil {
			return err
		}
	}
	return nil
}

// tree edits files below root without ever following a symlink out of it:
// every parent directory must be a real directory or a relative symlink
// (merged /usr's lib -> usr/lib), and the file itself is replaced, never
// written through.
type tree struct{ root string }

func (t tree) abs(p string) string { return filepath.Join(t.root, filepath.FromSlash(p)) }

func (t tree) checkParents(p string) error {
	parts := strings.Split(filepath.ToSlash(filepath.Clean(p)), "/")
	cur := t.root
	for _, part := range parts[:len(parts)-1] {
		if part == ".." {
			return fmt.Errorf("%s: path leaves the tree", p)
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // created below as real directories
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(cur)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) || strings.HasPrefix(filepath.Clean(target), "..") {
				return fmt.Errorf("%s: parent %s is a symlink to %s", p, cur, target)
			}
		} else if !fi.IsDir() {
			return fmt.Errorf("%s: parent %s is not a directory", p, cur)
		}
	}
	return nil
}

func (t tree) prepare(p string) error {
	if err := t.checkParents(p); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(t.abs(p)), 0o755); err != nil {
		return err
	}
	return t.remove(p)
}

func (t tree) write(p, content string, mode os.FileMode) error {
	if err := t.prepare(p); err != nil {
		return err
	}
	f, err := os.OpenFile(t.abs(p), os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil { // umask
		f.Close()
		return err
	}
	return f.Close()
}

func (t tree) edit(p string, fn func(string) string) error {
	if err := t.checkParents(p); err != nil {
		return err
	}
	fi, err := os.Lstat(t.abs(p))
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", p)
	}
	b, err := os.ReadFile(t.abs(p))
	if err != nil {
		return err
	}
	return t.write(p, fn(string(b)), fi.Mode().Perm())
}

// copyFile copies a file from the build host into the tree.
func (t tree) copyFile(p, src string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return t.write(p, string(b), mode)
}

func (t tree) symlink(p, target string) error {
	if err := t.prepare(p); err != nil {
		return err
	}
	return os.Symlink(target, t.abs(p))
}

func (t tree) remove(p string) error {
	if err := t.checkParents(p); err != nil {
		return err
	}
	err := os.Remove(t.abs(p))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (t tree) removeAll(p string) error {
	if err := t.checkParents(p); err != nil {
		return err
	}
	return os.RemoveAll(t.abs(p))
}

// glob returns tree-relative paths matching pattern.
func (t tree) glob(pattern string) []string {
	m, _ := filepath.Glob(t.abs(pattern))
	out := make([]string, 0, len(m))
	for _, p := range m {
		rel, err := filepath.Rel(t.root, p)
		if err == nil {
			out = append(out, filepath.ToSlash(rel))
		}
	}
	return out
}

package images

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The integration test builds both debian-12 variants (or reuses them) and
// boots each once under TCG with plain qemu and the same kind of seed, as
// the libvirt domain will: debian-12 applies it with forgelab-guestinit,
// debian-12-cloud-init with Debian's stock cloud-init (so forgelab's seeds
// stay honest for users' own cloud images).
//
//	FORGELAB_IMAGE_TESTS=1 go test ./images -run Debian12 -v
//
// With FORGELAB_STATE_DIR set, the images are kept in $FORGELAB_STATE_DIR/images
// and reused by the next run (CI builds once).

// qemuArgs are the QEMU settings the measurements were made with; the
// production libvirt domain uses the same machine, CPU model and buses. The
// second NIC has no peer: it carries the seed's static addresses.
func qemuArgs(boot *DirectBoot, disk, seed, serial string, sshPort int, mac, mac2 string) []string {
	var direct []string
	if boot != nil {
		direct = []string{"-kernel", boot.Kernel, "-initrd", boot.Initrd, "-append", boot.Cmdline}
	}
	return append(direct,
		"-machine", "pc", "-accel", "tcg,tb-size=128", "-cpu", "qemu64", "-m", "512", "-smp", "1",
		"-nodefaults", "-display", "none", "-monitor", "none",
		"-drive", "file="+disk+",if=virtio,format=qcow2",
		"-drive", "file="+seed+",if=virtio,format=raw,readonly=on",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", sshPort),
		"-device", "virtio-net-pci,netdev=n0,mac="+mac,
		"-netdev", "user,id=n1,restrict=on",
		"-device", "virtio-net-pci,netdev=n1,mac="+mac2,
		"-serial", "file:"+serial,
	)
}

func imageTestsEnabled(t *testing.T) (ci bool) {
	ci = os.Getenv("CI") == "true"
	if os.Getenv("FORGELAB_IMAGE_TESTS") != "1" && !ci {
		t.Skip("image build and boot test: set FORGELAB_IMAGE_TESTS=1 to run it (root, debootstrap, a Debian mirror; " +
			"about 3 min cold, 1 min with cached .debs, plus one TCG boot); FORGELAB_STATE_DIR keeps the image between runs")
	}
	return ci
}

// testGuestInit builds forgelab-guestinit for the image unless
// FORGELAB_GUESTINIT names one.
func testGuestInit(t *testing.T) string {
	if p := os.Getenv("FORGELAB_GUESTINIT"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "forgelab-guestinit")
	cmd := exec.Command("go", "build", "-o", out, "./guestinit/forgelab-guestinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build forgelab-guestinit: %v\n%s", err, b)
	}
	return out
}

func TestDebian12BuildAndBoot(t *testing.T) {
	ci := imageTestsEnabled(t)
	var missing []string
	for _, tool := range []string{"debootstrap", "sfdisk", "mkfs.ext4", "grub-mkimage", "qemu-img", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if len(missing) > 0 {
		msg := "missing for the image test: " + strings.Join(missing, ", ") +
			" (apt-get install debootstrap fdisk e2fsprogs grub-pc-bin qemu-utils qemu-system-x86; run as root)"
		if ci {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	dir := filepath.Join(t.TempDir(), "images")
	if sd := os.Getenv("FORGELAB_STATE_DIR"); sd != "" {
		dir = filepath.Join(sd, "images")
	}
	s := NewStore(dir)
	s.GuestInit = testGuestInit(t)
	ctx := context.Background()
	names := []string{"debian-12", "debian-12-cloud-init"}
	imgs := map[string]Image{}
	for _, name := range names {
		if s.Has(name) && s.Stale(name) {
			t.Logf("%s was built by an older recipe: rebuilding", name)
			if err := s.Remove(name); err != nil {
				t.Fatal(err)
			}
		}
		if !s.Has(name) {
			start := time.Now()
			if err := s.Build(ctx, name, testWriter{t}); err != nil {
				t.Fatal(err)
			}
			t.Logf("built %s in %s", name, time.Since(start).Round(time.Second))
		} else {
			t.Logf("reusing %s", s.Path(name))
		}
		img, err := s.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if s.Stale(name) {
			t.Errorf("%s is stale right after its build (recipe %q)", name, img.Recipe)
		}
		t.Logf("image: %d MiB file, %d MiB virtual, sha256 %s, %s", img.FileSize>>20, img.VirtualSize>>20, img.SHA256, img.Source)
		imgs[name] = img
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, ".build-*")); len(ents) > 0 {
		t.Errorf("build work directories left: %v", ents)
	}

	// Both boots at once: the machine has the cores, and CI the minutes.
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bootAndCheck(t, imgs[name], name == "debian-12-cloud-init")
		})
	}
}

// bootAndCheck boots img once, with a disk 1 GiB larger than the image (the
// root must grow) and a seed with this test's keys, a static data NIC and
// /etc/hosts lines, and checks in the guest what the seed asked for.
func bootAndCheck(t *testing.T, img Image, cloudInit bool) {
	ctx := context.Background()
	vm := t.TempDir()
	disk := filepath.Join(vm, "disk.qcow2")
	if err := CreateOverlay(ctx, img.Path, disk, img.VirtualSize+1<<30); err != nil {
		t.Fatal(err)
	}
	userSigner, userPub := newKey(t)
	hostPEM, hostPubLine, hostPub := newHostKey(t)
	const mac, mac2 = "52:54:00:f0:12:01", "52:54:00:f0:12:02"
	seed := Seed{
		InstanceID: "fl-test-" + strconv.FormatInt(time.Now().UnixNano(), 36), Hostname: "imgtest", User: "lab", PasswordHash: mustHash(t, "lab"),
		AuthorizedKeys: []string{userPub}, HostKeyPrivate: hostPEM, HostKeyPublic: hostPubLine,
		EtcHosts: "198.18.7.2\tpeer peer.test\n",
		NICs: []SeedNIC{
			{Name: "mgmt", MAC: mac, DHCP4: true},
			{Name: "eth1", MAC: mac2, Addresses: []string{"198.18.7.1/24", "fd00:18:7::1/64"}},
		},
	}
	seedPath := filepath.Join(vm, "seed.iso")
	if err := WriteSeedISO(seedPath, seed); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	serial := filepath.Join(vm, "serial.log")
	// As forgelab boots it: the image's kernel directly (Image.Boot).
	if img.Boot == nil {
		t.Fatalf("%s has no kernel for direct boot", img.Name)
	}
	qemu := exec.Command("qemu-system-x86_64", qemuArgs(img.Boot, disk, seedPath, serial, port, mac, mac2)...)
	var qemuOut bytes.Buffer
	qemu.Stdout, qemu.Stderr = &qemuOut, &qemuOut
	start := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	pid := qemu.Process.Pid
	t.Cleanup(func() {
		qemu.Process.Kill() // by PID, this test's own qemu only
		qemu.Wait()
	})

	cfg := &ssh.ClientConfig{
		User: "lab", Auth: []ssh.AuthMethod{ssh.PublicKeys(userSigner)},
		HostKeyCallback: ssh.FixedHostKey(hostPub), Timeout: 5 * time.Second,
	}
	var client *ssh.Client
	deadline := time.Now().Add(6 * time.Minute)
	for {
		c, err := ssh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), cfg)
		if err == nil {
			if _, err := run(c, "true"); err == nil {
				client = c
				break
			}
			c.Close()
		}
		if qemu.ProcessState != nil || time.Now().After(deadline) || processGone(pid) {
			t.Fatalf("no SSH login after %s (%v)\nqemu: %s\nserial log tail:\n%s",
				time.Since(start).Round(time.Second), err, qemuOut.String(), logTail(serial, 60))
		}
		time.Sleep(250 * time.Millisecond)
	}
	defer client.Close()
	t.Logf("boot to SSH login: %s, qemu CPU %s (1 vCPU, 512 MiB, TCG tb-size 128, -cpu qemu64)",
		time.Since(start).Round(100*time.Millisecond), qemuCPU(pid))

	checks := []struct{ cmd, want string }{
		{"hostname", "imgtest"},
		{"ip -br link show mgmt", "mgmt"},
		{"ip -4 -br addr show mgmt", "10.0.2.15/24"},
		// networkd may still be configuring the static NIC right after SSH
		{"timeout 60 sh -c 'until ip -br addr show eth1 | grep -q fd00:18:7::1/64; do sleep 0.5; done'; ip -br addr show eth1", "198.18.7.1/24 fd00:18:7::1/64"},
		{"getent hosts peer", "198.18.7.2"},
		{"getent hosts imgtest", "imgtest"},
		{"sudo -n true && echo sudo-ok", "sudo-ok"},
		{"sudo -n grep -c '^lab:\\$' /etc/shadow", "1"}, // a password hash: console logins work
		{"ls /etc/ssh/ | grep ssh_host_ | tr '\\n' ' '", "ssh_host_ed25519_key ssh_host_ed25519_key.pub "},
		{"cat /proc/cmdline", "console=ttyS0"},
		{"test -s /etc/machine-id && echo machine-id-ok", "machine-id-ok"},
		{"df -B1M --output=size / | tail -1", ""}, // checked below
	}
	if cloudInit {
		checks = append(checks, struct{ cmd, want string }{"timeout 300 cloud-init status --wait >/dev/null; cloud-init status", "status: done"})
	} else {
		checks = append(checks,
			struct{ cmd, want string }{"systemctl is-active forgelab-guestinit", "active"},
			struct{ cmd, want string }{"command -v cloud-init || echo no-cloud-init", "no-cloud-init"})
	}
	// The boot is finished: wait for it (bounded) rather than expect it at
	// the first SSH answer.
	checks = append(checks, struct{ cmd, want string }{"timeout 300 systemctl is-system-running --wait", "running"})
	for _, c := range checks {
		out, err := run(client, c.cmd)
		if err != nil && c.want != "running" {
			t.Errorf("%s: %v\n%s", c.cmd, err, out)
			continue
		}
		if !strings.Contains(out, c.want) {
			extra := ""
			if c.want == "running" {
				extra, _ = run(client, "systemctl --failed --no-legend")
			}
			t.Errorf("%s: got %q, want %q %s", c.cmd, out, c.want, extra)
		}
		if strings.HasPrefix(c.cmd, "df") {
			if mib, _ := strconv.Atoi(strings.TrimSpace(out)); mib < int(img.VirtualSize>>20)+900 {
				t.Errorf("root file system %d MiB: not grown to the 1 GiB larger disk", mib)
			}
		}
	}
	if out, err := run(client, "systemd-analyze; systemd-analyze blame | head -8"); err == nil {
		t.Logf("systemd-analyze:\n%s", out)
	}
	// The host key is the seed's: FixedHostKey above already checked it.
}

func mustHash(t *testing.T, pw string) string {
	h, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " forgelab-test"
}

func newHostKey(t *testing.T) (privPEM, pubLine string, pub ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(blk)), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), signer.PublicKey()
}

func run(c *ssh.Client, cmd string) (string, error) {
	sess, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	return string(out), err
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

// qemuCPU is the user+system CPU time qemu has used so far.
func qemuCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

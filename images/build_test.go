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

// The integration test builds debian-12 (or reuses it) and boots it once
// under TCG with plain qemu and a seed, as the libvirt domain will.
//
//	FORGELAB_IMAGE_TESTS=1 go test ./images -run Debian12 -v
//
// With FORGELAB_STATE_DIR set, the image is kept in $FORGELAB_STATE_DIR/images
// and reused by the next run (CI builds once).

// qemuArgs are the QEMU settings the measurements were made with; the
// production libvirt domain uses the same machine, CPU model and buses.
func qemuArgs(disk, seed, serial string, sshPort int, mac string) []string {
	return []string{
		"-machine", "pc", "-accel", "tcg,tb-size=128", "-cpu", "qemu64", "-m", "512", "-smp", "1",
		"-nodefaults", "-display", "none", "-monitor", "none",
		"-drive", "file=" + disk + ",if=virtio,format=qcow2",
		"-drive", "file=" + seed + ",if=virtio,format=raw,readonly=on",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", sshPort),
		"-device", "virtio-net-pci,netdev=n0,mac=" + mac,
		"-serial", "file:" + serial,
	}
}

func imageTestsEnabled(t *testing.T) (ci bool) {
	ci = os.Getenv("CI") == "true"
	if os.Getenv("FORGELAB_IMAGE_TESTS") != "1" && !ci {
		t.Skip("image build and boot test: set FORGELAB_IMAGE_TESTS=1 to run it (root, debootstrap, a Debian mirror; " +
			"about 3 min cold, 1 min with cached .debs, plus one TCG boot); FORGELAB_STATE_DIR keeps the image between runs")
	}
	return ci
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
	ctx := context.Background()
	if !s.Has("debian-12") {
		start := time.Now()
		if err := s.Build(ctx, "debian-12", testWriter{t}); err != nil {
			t.Fatal(err)
		}
		t.Logf("built debian-12 in %s", time.Since(start).Round(time.Second))
	} else {
		t.Logf("reusing %s", s.Path("debian-12"))
	}
	img, err := s.Get("debian-12")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image: %d MiB file, %d MiB virtual, sha256 %s, %s", img.FileSize>>20, img.VirtualSize>>20, img.SHA256, img.Source)
	if ents, _ := filepath.Glob(filepath.Join(dir, ".build-*")); len(ents) > 0 {
		t.Errorf("build work directories left: %v", ents)
	}

	// One boot: a disk 1 GiB larger than the image (the root must grow),
	// a seed with this test's keys.
	vm := t.TempDir()
	disk := filepath.Join(vm, "disk.qcow2")
	if err := CreateOverlay(ctx, img.Path, disk, img.VirtualSize+1<<30); err != nil {
		t.Fatal(err)
	}
	userSigner, userPub := newKey(t)
	hostPEM, hostPubLine, hostPub := newHostKey(t)
	const mac = "52:54:00:f0:12:01"
	seed := Seed{
		InstanceID: "fl-test-" + strconv.FormatInt(time.Now().UnixNano(), 36), Hostname: "imgtest", User: "lab", Password: "lab",
		AuthorizedKeys: []string{userPub}, HostKeyPrivate: hostPEM, HostKeyPublic: hostPubLine,
		NICs: []SeedNIC{{Name: "mgmt", MAC: mac, DHCP4: true}},
	}
	seedPath := filepath.Join(vm, "seed.iso")
	if err := WriteSeedISO(seedPath, seed); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	serial := filepath.Join(vm, "serial.log")
	qemu := exec.Command("qemu-system-x86_64", qemuArgs(disk, seedPath, serial, port, mac)...)
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
	deadline := time.Now().Add(5 * time.Minute)
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
		time.Sleep(500 * time.Millisecond)
	}
	defer client.Close()
	t.Logf("boot to SSH login: %s, qemu CPU %s (1 vCPU, 512 MiB, TCG tb-size 128, -cpu qemu64)",
		time.Since(start).Round(100*time.Millisecond), qemuCPU(pid))

	for _, c := range []struct{ cmd, want string }{
		{"hostname", "imgtest"},
		{"ip -br link show mgmt", "mgmt"},
		{"ip -4 -br addr show mgmt", "10.0.2.15/24"},
		{"sudo -n true && echo sudo-ok", "sudo-ok"},
		{"ls /etc/ssh/ | grep ssh_host_ | tr '\\n' ' '", "ssh_host_ed25519_key ssh_host_ed25519_key.pub "},
		{"cat /proc/cmdline", "console=ttyS0"},
		{"test -s /etc/machine-id && echo machine-id-ok", "machine-id-ok"},
		{"df -B1M --output=size / | tail -1", ""}, // checked below
		{"timeout 120 cloud-init status --wait; cloud-init status", "status: done"},
		{"systemctl is-system-running", "running"},
	} {
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
	// The host key is the seed's: FixedHostKey above already checked it.
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

package provision

// Test hosts made of network namespaces running Debian's sshd.
//
// Each fake host is a network namespace (fltp-<id>-<name>) joined by a veth
// to a bridge in the root namespace (the "management network"), running
// `sshd -D` with its own host key on port 2222. Its sshd runs in a private
// mount namespace: /opt and /run are fresh tmpfs, /etc and /var are
// overlays whose writes land in the test's temporary directory, so
// whatever forgelab does to the "physical host" never reaches the machine
// running the tests. There is no systemd in it, so services run under
// forgelab's own supervisor; the systemd path is tested against a VM
// (FORGELAB_TEST_SSH, see service_integration_test.go).
//
// Needs root, /usr/sbin/sshd (openssh-server), ip (iproute2) and overlayfs.
// Without them the tests skip, unless CI=true, where they fail.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

const sshdPath = "/usr/sbin/sshd"

// requireNetns skips (or, under CI=true, fails) when fake hosts cannot be made.
func requireNetns(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces and mounts)")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		missing = append(missing, sshdPath+" (apt-get install openssh-server)")
	}
	for _, tool := range []string{"ip", "tc", "curl", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("integration test: skipped with -short")
	}
	if len(missing) == 0 {
		return
	}
	msg := "integration test needs " + strings.Join(missing, ", ") + "; run as root on Debian with openssh-server, iproute2 and curl installed"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// labNet is a bridge standing for the lab's management network.
type labNet struct {
	t      *testing.T
	id     string
	bridge string
	prefix string // "10.250.N"
	gw     string // the bridge's address
	mu     sync.Mutex
	next   int
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLabNet(t *testing.T) *labNet {
	t.Helper()
	requireNetns(t)
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:2])
	used := run(t, "ip", "-4", "addr") + run(t, "ip", "-4", "route")
	n := int(b[2])
	for i := 0; strings.Contains(used, fmt.Sprintf("10.250.%d.", n)); i++ {
		if i > 255 {
			t.Fatal("no free 10.250.N.0/24")
		}
		n = (n + 1) % 256
	}
	ln := &labNet{t: t, id: id, bridge: "fltp" + id + "b", prefix: fmt.Sprintf("10.250.%d", n), next: 10}
	ln.gw = ln.prefix + ".1"
	run(t, "ip", "link", "add", ln.bridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", ln.bridge).Run() })
	run(t, "ip", "addr", "add", ln.gw+"/24", "dev", ln.bridge)
	run(t, "ip", "link", "set", ln.bridge, "up")
	return ln
}

// fakeHost is one "physical host".
type fakeHost struct {
	Name     string
	NS       string
	IP       string
	Addr     string // IP:2222
	KeyPath  string // the client's private key, authorized for root
	HostKey  ssh.PublicKey
	WrongKey string // a key that is not authorized
	Dir      string
	sshd     *exec.Cmd
	sshdLog  string
}

// addHost makes a fake host; setup runs inside its mount namespace before
// sshd starts (to put "existing" files in place).
func (ln *labNet) addHost(name, setup string) *fakeHost {
	t := ln.t
	t.Helper()
	ln.mu.Lock()
	idx := ln.next
	ln.next++
	ln.mu.Unlock()
	h := &fakeHost{Name: name, NS: "fltp-" + ln.id + "-" + name, IP: fmt.Sprintf("%s.%d", ln.prefix, idx), Dir: t.TempDir()}
	h.Addr = net.JoinHostPort(h.IP, "2222")
	veth := fmt.Sprintf("fltp%sv%d", ln.id, idx)

	run(t, "ip", "netns", "add", h.NS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", h.NS).Run() })
	run(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
	t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
	run(t, "ip", "link", "set", veth, "master", ln.bridge, "up")
	run(t, "ip", "-n", h.NS, "addr", "add", h.IP+"/24", "dev", "eth0")
	run(t, "ip", "-n", h.NS, "link", "set", "eth0", "up")
	run(t, "ip", "-n", h.NS, "link", "set", "lo", "up")

	hostKey, err := NewKeyPair("fake host " + name)
	if err != nil {
		t.Fatal(err)
	}
	hostKeyPath := filepath.Join(h.Dir, "ssh_host_ed25519_key")
	if err := hostKey.WriteFile(hostKeyPath); err != nil {
		t.Fatal(err)
	}
	h.HostKey, _, _, _, _ = ssh.ParseAuthorizedKey([]byte(hostKey.Public))
	client, _ := NewKeyPair("forgelab test")
	h.KeyPath = filepath.Join(h.Dir, "id_ed25519")
	client.WriteFile(h.KeyPath)
	wrong, _ := NewKeyPair("not authorized")
	h.WrongKey = filepath.Join(h.Dir, "id_wrong")
	wrong.WriteFile(h.WrongKey)
	authorized := filepath.Join(h.Dir, "authorized_keys")
	// sshd reads it as the user logging in: readable by all, like the
	// directories above it (the private keys beside it stay 0600).
	os.WriteFile(authorized, []byte(client.Public+"\n"), 0o644)
	os.Chmod(h.Dir, 0o755)
	os.Chmod(filepath.Dir(h.Dir), 0o755)
	cfg := filepath.Join(h.Dir, "sshd_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`ListenAddress %s
Port 2222
HostKey %s
PidFile none
AuthorizedKeysFile %s
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 100
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel VERBOSE
`, h.IP, hostKeyPath, authorized)), 0o644)

	var mounts strings.Builder
	mounts.WriteString("set -e\n")
	for _, d := range []string{"/etc", "/var"} {
		up, work := filepath.Join(h.Dir, "ovl"+d, "upper"), filepath.Join(h.Dir, "ovl"+d, "work")
		os.MkdirAll(up, 0o755)
		os.MkdirAll(work, 0o755)
		fmt.Fprintf(&mounts, "mount -t overlay fltp-%s -o lowerdir=%s,upperdir=%s,workdir=%s %s\n", strings.Trim(d, "/"), d, up, work, d)
	}
	mounts.WriteString("mount -t tmpfs -o mode=755 fltp-opt /opt\nmount -t tmpfs -o mode=755 fltp-run /run\nmkdir -p /run/sshd\n")
	mounts.WriteString(setup + "\n")
	mounts.WriteString("exec " + sshdPath + " -D -e -f " + cfg + "\n")

	h.sshdLog = filepath.Join(h.Dir, "sshd.log")
	logf, _ := os.Create(h.sshdLog)
	h.sshd = exec.Command("ip", "netns", "exec", h.NS, "sh", "-c", mounts.String())
	h.sshd.Stdout, h.sshd.Stderr = logf, logf
	if err := h.sshd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { h.sshd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		// sshd and anything a test started in the namespace (supervised
		// services run in sessions of their own), by PID.
		out, _ := exec.Command("ip", "netns", "pids", h.NS).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		h.sshd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", h.Addr, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(h.sshdLog)
			t.Fatalf("sshd of %s exited: %s", name, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(h.sshdLog)
			t.Fatalf("sshd of %s did not listen within 10s: %s", name, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return h
}

// knownHosts writes a known_hosts file that has this host's key.
func (h *fakeHost) knownHosts(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "known_hosts")
	line := knownHostsLineFor(h.Addr, h.HostKey)
	if err := os.WriteFile(f, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func knownHostsLineFor(addr string, key ssh.PublicKey) string {
	line, _ := KnownHostsLine(addr, string(ssh.MarshalAuthorizedKey(key)))
	return line
}

// physical describes the fake host as the lab file would.
func (h *fakeHost) physical(t *testing.T) PhysicalHost {
	return PhysicalHost{
		Name: h.Name, Lab: "fltest", Address: h.IP, Port: 2222, User: "root",
		KeyPath: h.KeyPath, KnownHosts: h.knownHosts(t), ConnectTimeout: 5 * time.Second,
	}
}

// connect logs in as root.
func (h *fakeHost) connect(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := ConnectPhysical(ctx, h.physical(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sh runs a script on the host (for assertions; forgelab's own code paths
// are what the tests exercise, this is the test's independent look).
func sh(t *testing.T, c *Client, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code, err := c.Run(ctx, "sh -s", strings.NewReader(script), &out, &errb)
	if err != nil || code != 0 {
		t.Fatalf("script failed (%d, %v): %s\n%s", code, err, errb.String(), script)
	}
	return out.String()
}

// snapshot lists every path under dirs with type, mode, owner, size, mtime,
// link target and content hash: two equal snapshots are the same tree, byte
// for byte (directory mtimes aside: adding and removing a file changes them).
func snapshot(t *testing.T, c *Client, dirs ...string) string {
	t.Helper()
	var q []string
	for _, d := range dirs {
		q = append(q, ShellQuote(d))
	}
	all := strings.Join(q, " ")
	return sh(t, c, fmt.Sprintf(`for d in %s; do [ -e "$d" ] || echo "absent $d"; done
find %s \( -type d -printf '%%y %%m %%u:%%g %%p\n' \) -o -printf '%%y %%m %%u:%%g %%s %%T@ %%p -> %%l\n' 2>/dev/null | sort
find %s -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
`, all, all, all))
}

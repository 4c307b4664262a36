// Package sshtest makes "physical hosts" for tests: network namespaces
// running Debian's sshd, joined by veths to a bridge in the root
// namespace that stands for the network between this machine and its
// servers.
//
// Each host's sshd runs in a private mount namespace: /opt, /run, /srv
// and /var are fresh tmpfs, /etc is a copy in the test's temporary
// directory, so whatever a test does to the host never reaches the
// machine running it, and the machine's own changes never reach the host.
// There is no systemd inside.
//
// Every name starts with "fltq" and is removed by name when the test
// ends; processes in the namespaces are killed by PID.
package sshtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
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
	"golang.org/x/crypto/ssh/knownhosts"
)

const sshdPath = "/usr/sbin/sshd"

// Prereq says why hosts cannot be made here, or "".
func Prereq() string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces and mounts)")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		missing = append(missing, sshdPath+" (apt-get install openssh-server)")
	}
	for _, tool := range []string{"ip", "tc", "nsenter", "sha256sum", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "needs " + strings.Join(missing, ", ")
}

// Net is a bridge with an address: the network the hosts are on.
type Net struct {
	t      testing.TB
	ID     string
	Bridge string
	Prefix string // "10.251.N"
	Gw     string // this machine's address on it
	mu     sync.Mutex
	next   int
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NewNet makes the bridge, on a free 10.251.N.0/24.
func NewNet(t testing.TB) *Net {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:2])
	used := run(t, "ip", "-4", "addr") + run(t, "ip", "-4", "route")
	n := int(b[2])
	for i := 0; strings.Contains(used, fmt.Sprintf("10.251.%d.", n)); i++ {
		if i > 255 {
			t.Fatal("no free 10.251.N.0/24")
		}
		n = (n + 1) % 256
	}
	nw := &Net{t: t, ID: id, Bridge: "fltq" + id + "b", Prefix: fmt.Sprintf("10.251.%d", n), next: 10}
	nw.Gw = nw.Prefix + ".1"
	run(t, "ip", "link", "add", nw.Bridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", nw.Bridge).Run() })
	run(t, "ip", "addr", "add", nw.Gw+"/24", "dev", nw.Bridge)
	run(t, "ip", "link", "set", nw.Bridge, "up")
	return nw
}

// Host is one "physical host".
type Host struct {
	Name       string
	NS         string
	IP         string
	Port       int
	Addr       string // IP:Port
	Key        string // private key file authorized for root
	WrongKey   string // a key that is not authorized
	HostKey    ssh.PublicKey
	KnownHosts string // a known_hosts file with the host's key
	Dir        string
	pid        int // sshd's, for nsenter
	sshdLog    string
}

// KeyPair writes a new ed25519 key pair to path and path.pub and returns
// the public key line.
func KeyPair(t testing.TB, path, comment string) string {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
	os.WriteFile(path+".pub", []byte(line+"\n"), 0o644)
	return line
}

// AddHost makes a host; setup is a shell script run inside its mount
// namespace before sshd starts (to put the owner's files in place).
func (nw *Net) AddHost(name, setup string) *Host {
	t := nw.t
	t.Helper()
	nw.mu.Lock()
	idx := nw.next
	nw.next++
	nw.mu.Unlock()
	h := &Host{Name: name, NS: "fltq-" + nw.ID + "-" + name, IP: fmt.Sprintf("%s.%d", nw.Prefix, idx), Port: 22, Dir: t.TempDir()}
	h.Addr = net.JoinHostPort(h.IP, strconv.Itoa(h.Port))
	veth := fmt.Sprintf("fltq%sv%d", nw.ID, idx)

	run(t, "ip", "netns", "add", h.NS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", h.NS).Run() })
	run(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
	t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
	run(t, "ip", "link", "set", veth, "master", nw.Bridge, "up")
	run(t, "ip", "-n", h.NS, "addr", "add", h.IP+"/24", "dev", "eth0")
	run(t, "ip", "-n", h.NS, "link", "set", "eth0", "up")
	run(t, "ip", "-n", h.NS, "link", "set", "lo", "up")
	run(t, "ip", "-n", h.NS, "route", "add", "default", "via", nw.Gw)

	hostKeyPath := filepath.Join(h.Dir, "ssh_host_ed25519_key")
	hostPub := KeyPair(t, hostKeyPath, "host "+name)
	h.HostKey, _, _, _, _ = ssh.ParseAuthorizedKey([]byte(hostPub))
	h.Key = filepath.Join(h.Dir, "id_ed25519")
	client := KeyPair(t, h.Key, "forgelab test")
	h.WrongKey = filepath.Join(h.Dir, "id_wrong")
	KeyPair(t, h.WrongKey, "not authorized")
	h.KnownHosts = filepath.Join(h.Dir, "known_hosts")
	addr := h.IP
	if h.Port != 22 {
		addr = h.Addr
	}
	os.WriteFile(h.KnownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, h.HostKey)+"\n"), 0o600)
	authorized := filepath.Join(h.Dir, "authorized_keys")
	os.WriteFile(authorized, []byte(client+"\n"), 0o644)
	os.Chmod(h.Dir, 0o755)
	os.Chmod(filepath.Dir(h.Dir), 0o755)
	cfg := filepath.Join(h.Dir, "sshd_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`ListenAddress %s
Port %d
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
`, h.IP, h.Port, hostKeyPath, authorized)), 0o644)

	// A copy of /etc (so that the machine's own /etc changing during the
	// test does not change the host), a fresh /var, /opt, /run and /srv.
	var mounts strings.Builder
	etc := filepath.Join(h.Dir, "etc")
	fmt.Fprintf(&mounts, "set -e\nmkdir -p %[1]s\ncp -a /etc/. %[1]s/\nmount --bind %[1]s /etc\n", etc)
	mounts.WriteString("for d in /opt /run /srv /var; do mount -t tmpfs -o mode=755 fltq-tmp $d; done\n")
	mounts.WriteString("mkdir -p /run/sshd /run/lock /var/lib /var/log /var/tmp /var/cache && chmod 1777 /var/tmp && ln -s /run /var/run && ln -s /run/lock /var/lock\n")
	mounts.WriteString(setup + "\n")
	mounts.WriteString("exec " + sshdPath + " -D -e -f " + cfg + "\n")

	h.sshdLog = filepath.Join(h.Dir, "sshd.log")
	logf, _ := os.Create(h.sshdLog)
	cmd := exec.Command("ip", "netns", "exec", h.NS, "unshare", "-m", "--propagation", "private", "sh", "-c", mounts.String())
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.pid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		// Everything running in the namespace (sshd, supervised services,
		// workloads), by PID.
		out, _ := exec.Command("ip", "netns", "pids", h.NS).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		cmd.Process.Kill()
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

// Sh runs a script inside the host (its network and mount namespaces),
// without SSH: the test's own, independent look.
func (h *Host) Sh(t testing.TB, script string) string {
	t.Helper()
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(h.pid), "-m", "-n", "sh", "-s")
	cmd.Stdin = strings.NewReader(script)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("on %s: %v: %s\n%s", h.Name, err, errb.String(), script)
	}
	return out.String()
}

// Snapshot lists everything a lab could change on the host: every path
// under /opt, /etc, /srv, /run and /var/lib with type, mode, owner, size,
// mtime, link target and content hash, the network devices, addresses
// and qdiscs. Equal snapshots are the same host, byte
// for byte (directory mtimes aside: adding and removing a file changes
// them; sshd's own files under /run aside).
func (h *Host) Snapshot(t testing.TB) string {
	t.Helper()
	return h.Sh(t, `dirs="/opt /etc /srv /run /var/lib"
find $dirs -path /run/sshd -prune -o \( -type d -printf '%y %m %u:%g %p\n' \) -o -printf '%y %m %u:%g %s %T@ %p -> %l\n' 2>/dev/null | sort
find $dirs -path /run/sshd -prune -o -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
ip -d -o link show | sed 's/ link-netns [^ ]*//'
ip -o addr show | awk '{print $2, $3, $4}'
tc qdisc show
`)
}

// Processes lists the command lines of the processes in the host's
// network namespace other than sshd and its sessions.
func (h *Host) Processes(t testing.TB) []string {
	t.Helper()
	out, _ := exec.Command("ip", "netns", "pids", h.NS).Output()
	var procs []string
	for _, f := range strings.Fields(string(out)) {
		b, err := os.ReadFile("/proc/" + f + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if strings.Contains(args, "sshd") || args == "" {
			continue
		}
		procs = append(procs, f+" "+args)
	}
	return procs
}

// SSHSpec is the host's ssh table for a lab file: key and known_hosts
// files given, trust_on_first_use off.
func (h *Host) SSHSpec() string {
	return fmt.Sprintf(`{ address = %q, port = %d, key = %q, known_hosts = %q }`, h.IP, h.Port, h.Key, h.KnownHosts)
}

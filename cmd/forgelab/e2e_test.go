package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests drive the real forgelab binary against real libvirtd and
// booted guests. Boots cost about a minute of CPU each under TCG, so one
// lab serves many checks.

var binPath string

func TestMain(m *testing.M) {
	code := func() int {
		if p := os.Getenv("FORGELAB_BIN"); p != "" {
			binPath = p
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "forgelab-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binPath = filepath.Join(dir, "forgelab")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build forgelab: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func stateDir() string {
	if d := os.Getenv("FORGELAB_STATE_DIR"); d != "" {
		return d
	}
	return "/var/lib/forgelab"
}

// requireVMs fails in CI and skips elsewhere when VMs cannot be booted.
func requireVMs(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("VM test: skipped with -short")
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img", "virsh", "debootstrap"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if err := exec.Command("virsh", "-c", "qemu:///system", "version").Run(); err != nil {
		missing = append(missing, "a running libvirtd")
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("VM test needs %s: run `make setup` as root (or `make test`, which does it)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

type result struct {
	stdout, stderr string
	code           int
}

func forgelab(t *testing.T, args ...string) result {
	t.Helper()
	return forgelabIn(t, stateDir(), args...)
}

// forgelabIn runs the binary against another state dir.
func forgelabIn(t *testing.T, state string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"--state-dir", state}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run forgelab %v: %v", args, err)
	}
	return r
}

func mustForgelab(t *testing.T, args ...string) string {
	t.Helper()
	r := forgelab(t, args...)
	if r.code != 0 {
		t.Fatalf("forgelab %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func labID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])[:4]
}

// leftovers lists every libvirt object, netdev and file of a lab that
// still exists.
func leftovers(t *testing.T, name string) []string {
	t.Helper()
	id := labID(name)
	var left []string
	// A listing that fails finds nothing, and so would pass a leak: it
	// fails the test instead.
	for _, args := range [][]string{{"list", "--all", "--name"}, {"net-list", "--all", "--name"}} {
		out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).Output()
		if err != nil {
			t.Fatalf("virsh %s: %v (is libvirtd running? make setup starts it)", strings.Join(args, " "), err)
		}
		for _, n := range strings.Fields(string(out)) {
			if strings.HasPrefix(n, "fl-"+id+"-") {
				left = append(left, args[0]+" "+n)
			}
		}
	}
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link show: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"), "fl"+id) {
			left = append(left, "netdev "+f[1])
		}
	}
	// A background process of the lab (the link fabric) names its config.
	if out, _ := exec.Command("pgrep", "-f", filepath.Join(stateDir(), "labs", name)+"/").Output(); len(out) > 0 {
		left = append(left, "processes "+strings.Join(strings.Fields(string(out)), ","))
	}
	if _, err := os.Stat(filepath.Join(stateDir(), "labs", name)); err == nil {
		left = append(left, "dir "+filepath.Join(stateDir(), "labs", name))
	}
	return left
}

func assertNothingLeft(t *testing.T, name string) {
	t.Helper()
	if left := leftovers(t, name); len(left) > 0 {
		t.Errorf("lab %s leaked: %s", name, strings.Join(left, "; "))
	}
}

func writeLab(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lab.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type inspectJSON struct {
	Lab   string
	Phase string
	Accel string
	Mgmt  string `json:"mgmt_network"`
	Hosts []struct {
		Name   string
		State  string
		Ready  bool
		MgmtIP string `json:"mgmt_ip"`
		NICs   []struct {
			Name      string
			Link      string
			MAC       string
			Addresses []string
		}
	}
	Links []struct {
		Name      string
		Endpoints []string
	}
}

func inspect(t *testing.T, lab string) inspectJSON {
	t.Helper()
	var info inspectJSON
	if err := json.Unmarshal([]byte(mustForgelab(t, "inspect", "-o", "json", lab)), &info); err != nil {
		t.Fatal(err)
	}
	return info
}

func addrOn(info inspectJSON, host, link string, v6 bool) string {
	for _, h := range info.Hosts {
		if h.Name != host {
			continue
		}
		for _, n := range h.NICs {
			if n.Link != link {
				continue
			}
			for _, a := range n.Addresses {
				if strings.Contains(a, ":") == v6 {
					return strings.Split(a, "/")[0]
				}
			}
		}
	}
	return ""
}

const trioLab = `
[lab]
name = "fltest-trio"
[defaults]
memory = "512MiB"
[[host]]
name = "a"
[[host]]
name = "b"
[[host]]
name = "c"
[[link]]
name = "ab"
endpoints = ["a", "b"]
[[link]]
name = "bc"
endpoints = ["b", "c"]
[[link]]
name = "ca"
endpoints = ["c", "a"]
`

const soloLab = `
[lab]
name = "fltest-solo"
[[host]]
name = "s"
`

// TestLabLifecycle boots the three-host example, checks what a user would
// check, runs a second lab beside it, and destroys both without a trace.
func TestLabLifecycle(t *testing.T) {
	requireVMs(t)
	const lab = "fltest-trio"
	forgelab(t, "destroy", lab, "fltest-solo") // a previous run killed half-way
	t.Cleanup(func() {
		forgelab(t, "destroy", lab, "fltest-solo")
		assertNothingLeft(t, lab)
		assertNothingLeft(t, "fltest-solo")
	})
	start := time.Now()
	r := forgelab(t, "create", writeLab(t, trioLab))
	if r.code != 0 {
		t.Fatalf("create: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("create of 3 VMs took %s\n%s", time.Since(start).Round(time.Second), r.stderr)
	if !strings.Contains(r.stderr, "accelerator:") {
		t.Errorf("create did not say which accelerator it chose:\n%s", r.stderr)
	}
	info := inspect(t, lab)

	t.Run("inspect", func(t *testing.T) {
		if info.Phase != "ready" || len(info.Hosts) != 3 || len(info.Links) != 3 {
			t.Fatalf("inspect: phase %s, %d hosts, %d links", info.Phase, len(info.Hosts), len(info.Links))
		}
		for _, h := range info.Hosts {
			if h.State != "running" || !h.Ready || len(h.NICs) != 2 {
				t.Errorf("host %s: state %s, ready %v, %d NICs", h.Name, h.State, h.Ready, len(h.NICs))
			}
		}
	})
	t.Run("hostnames", func(t *testing.T) {
		for _, h := range []string{"a", "b", "c"} {
			if got := strings.TrimSpace(mustForgelab(t, "exec", lab, h, "--", "hostname")); got != h {
				t.Errorf("hostname of %s = %q", h, got)
			}
		}
	})
	t.Run("ping every link", func(t *testing.T) {
		for _, l := range info.Links {
			from, to := l.Endpoints[0], l.Endpoints[1]
			for _, v6 := range []bool{false, true} {
				addr := addrOn(info, to, l.Name, v6)
				if addr == "" {
					t.Fatalf("no address of %s on %s (v6=%v)", to, l.Name, v6)
				}
				cmd := fmt.Sprintf("ping -c 3 -i 0.2 -W 3 %s", addr)
				if v6 {
					// IPv6 needs duplicate address detection to finish first.
					cmd = fmt.Sprintf("for i in $(seq 20); do ping -c 1 -W 1 %s >/dev/null && break; sleep 0.5; done; ping -c 3 -i 0.2 -W 3 %s", addr, addr)
				}
				r := forgelab(t, "exec", lab, from, "--", cmd)
				if r.code != 0 || !strings.Contains(r.stdout, " 0% packet loss") {
					t.Errorf("%s -> %s over %s (%s): exit %d\n%s%s", from, to, l.Name, addr, r.code, r.stdout, r.stderr)
				}
			}
		}
	})
	t.Run("hosts file names neighbours", func(t *testing.T) {
		r := forgelab(t, "exec", lab, "a", "--", "ping -c 1 -W 3 b.ab && ping -c 1 -W 3 c")
		if r.code != 0 {
			t.Errorf("ping by name: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("exit code passes through", func(t *testing.T) {
		if r := forgelab(t, "exec", lab, "b", "--", "exit 7"); r.code != 7 {
			t.Errorf("exec exit 7 gave %d", r.code)
		}
	})
	t.Run("ssh with verified host key", func(t *testing.T) {
		out := mustForgelab(t, "ssh", lab, "c", "--", "cat", "/etc/hostname")
		if strings.TrimSpace(out) != "c" {
			t.Errorf("ssh cat /etc/hostname = %q", out)
		}
	})
	t.Run("serial log", func(t *testing.T) {
		out := mustForgelab(t, "console", "--log", lab, "a")
		if !strings.Contains(out, "Linux version") && !strings.Contains(out, "login:") {
			t.Errorf("serial log of a shows no boot:\n%s", lastN(out, 20))
		}
	})
	t.Run("interactive console", func(t *testing.T) {
		cmd := exec.Command(binPath, "--state-dir", stateDir(), "console", lab, "b")
		stdin, _ := cmd.StdinPipe()
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "login:") && time.Now().Before(deadline) {
			stdin.Write([]byte("\r"))
			time.Sleep(time.Second)
		}
		stdin.Write([]byte{0x1d}) // Ctrl-]: the escape forgelab announces
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("console exited with %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("console did not end on Ctrl-]")
		}
		got := out.String()
		if !strings.Contains(got, "Ctrl-]") || !strings.Contains(got, "b login:") {
			t.Errorf("console output lacks the escape hint or b's login prompt:\n%s", got)
		}
	})
	t.Run("fabric", func(t *testing.T) { fabricChecks(t, lab, info) })
	t.Run("kernel shaper inside a guest", func(t *testing.T) { kernelShaperInGuest(t, lab, "c") })
	t.Run("second lab beside it", func(t *testing.T) {
		r := forgelab(t, "create", writeLab(t, soloLab))
		if r.code != 0 {
			t.Fatalf("create solo: exit %d\n%s", r.code, r.stderr)
		}
		solo := inspect(t, "fltest-solo")
		if solo.Mgmt == info.Mgmt {
			t.Errorf("both labs on management network %s", solo.Mgmt)
		}
		if got := strings.TrimSpace(mustForgelab(t, "exec", "fltest-solo", "s", "--", "hostname")); got != "s" {
			t.Errorf("solo hostname %q", got)
		}
		start := time.Now()
		mustForgelab(t, "destroy", "fltest-solo")
		t.Logf("destroy of 1 VM took %s", time.Since(start).Round(time.Millisecond))
		assertNothingLeft(t, "fltest-solo")
		if got := strings.TrimSpace(mustForgelab(t, "exec", lab, "a", "--", "hostname")); got != "a" {
			t.Errorf("trio broken by destroying solo: %q", got)
		}
	})
	start = time.Now()
	mustForgelab(t, "destroy", lab)
	t.Logf("destroy of 3 VMs took %s", time.Since(start).Round(time.Millisecond))
	assertNothingLeft(t, lab)
	if r := forgelab(t, "destroy", lab); r.code != 0 {
		t.Errorf("second destroy failed: %s", r.stderr)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func lastN(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestDestroyAfterKill kills `forgelab create` with SIGKILL at several
// points and checks that destroy, from the saved state alone, removes
// everything.
func TestDestroyAfterKill(t *testing.T) {
	requireVMs(t)
	const lab = "fltest-kill"
	const text = `
[lab]
name = "fltest-kill"
[[host]]
name = "x"
[[host]]
name = "y"
[[link]]
endpoints = ["x", "y"]
`
	file := writeLab(t, text)
	statePath := filepath.Join(stateDir(), "labs", lab, "state.json")
	type stateJSON struct {
		Phase     string
		Resources []struct{ Kind, Name string }
		Hosts     map[string]any
	}
	points := []struct {
		name string
		at   func(s stateJSON) bool
	}{
		{"network recorded", func(s stateJSON) bool { return has(s.Resources, "network") }},
		{"first domain recorded", func(s stateJSON) bool { return has(s.Resources, "domain") }},
		{"first host ready", func(s stateJSON) bool { return len(s.Hosts) > 0 }},
	}
	forgelab(t, "destroy", lab)
	t.Cleanup(func() { forgelab(t, "destroy", lab); assertNothingLeft(t, lab) })
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			cmd := exec.Command(binPath, "--state-dir", stateDir(), "create", "--parallel", "1", file)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			killed := false
			deadline := time.After(5 * time.Minute)
		poll:
			for {
				select {
				case err := <-done:
					t.Fatalf("create ended before the kill point (%v):\n%s", err, errb.String())
				case <-deadline:
					cmd.Process.Kill()
					t.Fatalf("kill point %q never reached:\n%s", p.name, errb.String())
				case <-time.After(10 * time.Millisecond):
				}
				data, err := os.ReadFile(statePath)
				if err != nil {
					continue
				}
				var s stateJSON
				if json.Unmarshal(data, &s) != nil {
					continue
				}
				if p.at(s) {
					cmd.Process.Signal(syscall.SIGKILL)
					killed = true
					break poll
				}
			}
			<-done
			if !killed {
				t.Fatal("not killed")
			}
			r := forgelab(t, "destroy", lab)
			if r.code != 0 {
				t.Fatalf("destroy after kill: %s", r.stderr)
			}
			assertNothingLeft(t, lab)
		})
	}
}

func has(res []struct{ Kind, Name string }, kind string) bool {
	for _, r := range res {
		if r.Kind == kind {
			return true
		}
	}
	return false
}

// TestBadLabFiles runs create on broken files: each must fail with an
// error naming the file and line, and make nothing.
func TestBadLabFiles(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"unknown key", "[lab]\nname = \"fltest-bad\"\n[[host]]\nname = \"a\"\ncpu = 2\n", "lab.toml:5"},
		{"link to unknown host", "[lab]\nname = \"fltest-bad\"\n[[host]]\nname = \"a\"\n[[link]]\nendpoints = [\"a\", \"zz\"]\n", "lab.toml:6: link #1: endpoint \"zz\" is not a host"},
		{"bad memory", "[lab]\nname = \"fltest-bad\"\n[[host]]\nname = \"a\"\nmemory = \"lots\"\n", "lab.toml:5"},
		{"syntax", "[lab]\nname = \"fltest-bad\"\n[[host]]\nname = \n", "lab.toml:4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := forgelab(t, "create", writeLab(t, tc.text))
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("create: exit %d, stderr %q; want an error with %q", r.code, r.stderr, tc.want)
			}
			assertNothingLeft(t, "fltest-bad")
		})
	}
}

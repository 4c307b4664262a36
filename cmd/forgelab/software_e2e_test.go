package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/forgelab/forgelab/provision/sshtest"
)

// Software on lab hosts, end to end: physical hosts made for the test
// (network namespaces running Debian's sshd, see provision/sshtest), and
// lab VMs. The physical-host tests boot no VM.

// requirePhysical fails in CI and skips elsewhere when physical hosts
// cannot be made or labs cannot be created.
func requirePhysical(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	msg := sshtest.Prereq()
	if msg == "" && exec.Command("virsh", "-c", "qemu:///system", "version").Run() != nil {
		msg = "needs a running libvirtd (the lab's management network)"
	}
	if msg == "" {
		return
	}
	msg = "physical host test " + msg + ": run `make setup` as root"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// buildDemo builds the quickstart's program into dir/bin/demo.
func buildDemo(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin", "demo")
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, "../../examples/quickstart")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the demo program: %v\n%s", err, out)
	}
	return bin
}

// writeTree writes files (path -> content) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// workloadsJSON waits for a lab's workloads (the named ones; all when
// none are named) and returns them all by "name@host".
func workloadsJSON(t *testing.T, lab string, names ...string) map[string]map[string]any {
	t.Helper()
	if len(names) == 0 {
		names = []string{""}
	}
	for _, n := range names {
		args := []string{"workload", "--wait", "--timeout", "3m", lab}
		if n != "" {
			args = append(args, n)
		}
		if r := forgelab(t, args...); r.code != 0 {
			t.Errorf("workload --wait %s: exit %d\n%s%s", n, r.code, r.stdout, r.stderr)
		}
	}
	r := forgelab(t, "workload", "-o", "json", lab)
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("workload -o json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	out := map[string]map[string]any{}
	for _, w := range list {
		out[fmt.Sprint(w["name"], "@", w["host"])] = w
	}
	return out
}

// metrics reads a workload's metrics file.
func metrics(t *testing.T, w map[string]any) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprint(w["metrics_file"]))
	if err != nil {
		t.Fatalf("metrics of %v: %v", w["name"], err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m struct{ Values map[string]any }
		if err := json.Unmarshal([]byte(line), &m); err == nil {
			out = append(out, m.Values)
		}
	}
	return out
}

// checkBarrier checks the barrier "start" between first and late: late
// arrived 2 s after first did (it awaited first's signal, then slept), so
// first waited about 2 s for it, and late hardly at all. Each host's
// wait is measured on its own clock.
func checkBarrier(t *testing.T, ws map[string]map[string]any, first, late string) {
	t.Helper()
	mf, ml := metrics(t, ws["meet@"+first]), metrics(t, ws["meet@"+late])
	if len(mf) != 1 || len(ml) != 1 {
		t.Fatalf("barrier metrics %v %v", mf, ml)
	}
	wf, _ := mf[0]["waited_ms"].(float64)
	wl, _ := ml[0]["waited_ms"].(float64)
	if wf < 1800 || wf > 10000 || wl > 1500 {
		t.Errorf("barrier: %s waited %.0f ms (want about 2000), %s waited %.0f ms (want little)", first, wf, late, wl)
	}
}

// TestPhysicalHosts adopts two "physical hosts" over SSH (one with a
// known host key, one trusted on first use), links them over VXLAN
// through this machine's fabric, deploys a tree and a template, runs a
// service with a readiness check, a sender and a receiver reporting
// JSON, and a barrier; redeploys after changes (counting what is sent);
// then destroys, and both hosts are byte for byte what they were.
func TestPhysicalHosts(t *testing.T) {
	requirePhysical(t)
	const lab = "fltest-phys"
	forgelab(t, "destroy", lab)
	nw := sshtest.NewNet(t)
	p1 := nw.AddHost("p1", "mkdir -p /opt/keep && echo \"owner's\" > /opt/keep/data && chmod 640 /opt/keep/data")
	p2 := nw.AddHost("p2", "")
	t.Cleanup(func() {
		forgelab(t, "destroy", lab)
		assertNothingLeft(t, lab)
	})
	before1, before2 := p1.Snapshot(t), p2.Snapshot(t)
	emptyKnown := filepath.Join(t.TempDir(), "known_hosts") // p2: trusted on first use

	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	demo := buildDemo(t, app)
	os.WriteFile(filepath.Join(app, "README"), []byte("demo v1\n"), 0o644)
	os.MkdirAll(filepath.Join(app, "etc"), 0o755)
	os.WriteFile(filepath.Join(app, "etc", "secret"), []byte("s3cret\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "peer.conf"), []byte("me={{ .Name }} peer={{ ip \"p2\" }} coord={{ .Coord }} seed={{ .Seed }}\n"), 0o644)
	text := fmt.Sprintf(`
[lab]
name = %q
seed = 7
[[host]]
name = "p1"
kind = "physical"
ssh = %s
[[host]]
name = "p2"
kind = "physical"
ssh = { address = %q, key = %q, known_hosts = %q, trust_on_first_use = true }
[[link]]
name = "pp"
endpoints = ["p1", "p2"]
[[deploy]]
src = "app"
dst = "/opt/demo"
[[deploy]]
hosts = ["p1"]
src = "peer.conf"
dst = "/srv/demo/"
template = true
[[service]]
name = "web"
hosts = ["p1"]
command = "/opt/demo/bin/demo serve --listen 127.0.0.1:18080"
ready = "http://127.0.0.1:18080/healthz"
[[workload]]
name = "receiver"
host = "p2"
command = "/opt/demo/bin/demo recv --listen :9000 --for 60s --signal receiver-up --until-signal sender-done"
[[workload]]
name = "sender"
host = "p1"
command = "/opt/demo/bin/demo send --to {{ ip \"p2\" }}:9000 --rate 200 --for 3s --wait-signal receiver-up --done-signal sender-done"
timeout = "60s"
[[workload]]
name = "meet"
hosts = ["p1", "p2"]
command = "if [ $FORGELAB_HOST = p1 ]; then exec /opt/demo/bin/demo barrier --await p2-here --delay 2s start 2; else exec /opt/demo/bin/demo barrier --raise p2-here start 2; fi"
[[workload]]
name = "forever"
host = "p2"
command = "echo '{\"started\": 1}'; exec sleep 100000"
`, lab, p1.SSHSpec(), p2.IP, p2.Key, emptyKnown)
	file := filepath.Join(dir, "lab.toml")
	os.WriteFile(file, []byte(text), 0o644)

	start := time.Now()
	r := forgelab(t, "create", file)
	if r.code != 0 {
		t.Fatalf("create: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("create took %s:\n%s", time.Since(start).Round(time.Millisecond), r.stderr)
	info := inspect(t, lab)
	p2addr := addrOn(info, "p2", "pp", false)

	t.Run("deployed", func(t *testing.T) {
		got := p1.Sh(t, "stat -c '%a %s' /opt/demo/bin/demo /opt/demo/etc/secret; cat /srv/demo/peer.conf /opt/demo/README")
		fi, _ := os.Stat(demo)
		// The coordination URL carries the lab's token as its password.
		want := fmt.Sprintf(`^755 %d\n600 7\nme=p1 peer=%s coord=http://forgelab:[0-9a-f]{32}@%s:`, fi.Size(), regexp.QuoteMeta(p2addr), regexp.QuoteMeta(nw.Gw))
		if !regexp.MustCompile(want).MatchString(got) || !strings.Contains(got, " seed=7\ndemo v1\n") {
			t.Errorf("on p1:\n%s\nwant it to start with:\n%s", got, want)
		}
		if got := p2.Sh(t, "ls /srv; test -x /opt/demo/bin/demo && echo ok"); strings.TrimSpace(got) != "ok" {
			t.Errorf("on p2: %q (the template deploy is for p1 only)", got)
		}
	})
	t.Run("host key trusted on first use", func(t *testing.T) {
		known, _ := os.ReadFile(filepath.Join(stateDir(), "labs", lab, "known_hosts"))
		if !strings.Contains(string(known), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(p2.HostKey)))) {
			t.Errorf("p2's key is not in the lab's known_hosts:\n%s", known)
		}
		if data, _ := os.ReadFile(emptyKnown); len(data) != 0 {
			t.Errorf("the user's known_hosts file was written: %s", data)
		}
	})
	t.Run("service and logs", func(t *testing.T) {
		out := mustForgelab(t, "logs", lab, "p1", "web")
		if !strings.Contains(out, "serving on http://127.0.0.1:18080") {
			t.Errorf("logs of web:\n%s", out)
		}
		if got := p1.Sh(t, "curl -fsS http://127.0.0.1:18080/healthz"); got != "ok\n" {
			t.Errorf("healthz %q", got)
		}
		if r := forgelab(t, "logs", lab, "p2", "web"); r.code == 0 || !strings.Contains(r.stderr, `runs no service "web"`) {
			t.Errorf("logs of a service p2 does not run: %d %s", r.code, r.stderr)
		}
	})
	t.Run("ssh", func(t *testing.T) {
		for _, h := range []string{"p1", "p2"} {
			if out := mustForgelab(t, "ssh", lab, h, "--", "cat", "/opt/demo/README"); out != "demo v1\n" {
				t.Errorf("ssh %s: %q", h, out)
			}
		}
	})
	t.Run("link over vxlan", func(t *testing.T) {
		r := forgelab(t, "exec", lab, "p1", "--", "ping -c 3 -i 0.2 -W 2 "+p2addr)
		if r.code != 0 || !strings.Contains(r.stdout, " 0% packet loss") {
			t.Errorf("p1 -> p2 over pp: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("workloads", func(t *testing.T) {
		ws := workloadsJSON(t, lab, "receiver", "sender", "meet")
		for k, w := range ws {
			if k == "forever@p2" {
				if w["state"] != "running" || w["metrics"] != float64(1) {
					t.Errorf("%s: %v", k, w)
				}
				continue
			}
			if w["state"] != "exited" || w["exit_code"] != float64(0) {
				t.Errorf("%s: %v", k, w)
			}
		}
		recv := metrics(t, ws["receiver@p2"])
		send := metrics(t, ws["sender@p1"])
		if len(recv) < 3 || len(send) < 3 {
			t.Fatalf("metrics: receiver %d lines, sender %d", len(recv), len(send))
		}
		final, sent := recv[len(recv)-1], send[len(send)-1]
		if final["final"] != true || sent["final"] != true || final["packets"] != sent["sent"] || final["packets"].(float64) < 500 || final["lost"] != float64(0) {
			t.Errorf("over the link the sender sent %v packets, the receiver got %v (lost %v)", sent["sent"], final["packets"], final["lost"])
		}
		checkBarrier(t, ws, "p2", "p1")
		out := mustForgelab(t, "workload", lab)
		if !regexp.MustCompile(`(?m)^receiver\s+p2\s+exited\s+0\s`).MatchString(out) {
			t.Errorf("workload table:\n%s", out)
		}
	})
	t.Run("redeploy", func(t *testing.T) {
		out := mustForgelab(t, "deploy", lab)
		if !strings.Contains(out, "p1         0 sent (0 bytes), 4 unchanged") || !strings.Contains(out, "p2         0 sent (0 bytes), 3 unchanged") {
			t.Errorf("redeploy of nothing new:\n%s", out)
		}
		os.WriteFile(filepath.Join(app, "README"), []byte("demo v2\n"), 0o644)
		out = mustForgelab(t, "deploy", lab)
		if !strings.Contains(out, "p1         1 sent (8 bytes), 3 unchanged") || !strings.Contains(out, "p2         1 sent (8 bytes), 2 unchanged") || strings.Contains(out, "restarted") {
			t.Errorf("redeploy of one changed file:\n%s", out)
		}
		pid := p1.Sh(t, "cat /run/forgelab/web/pid")
		f, _ := os.OpenFile(demo, os.O_APPEND|os.O_WRONLY, 0)
		f.Write([]byte{0})
		f.Close()
		out = mustForgelab(t, "deploy", "--host", "p1", lab)
		if !strings.Contains(out, "p1         1 sent") || !strings.Contains(out, "restarted web") || strings.Contains(out, "p2") {
			t.Errorf("redeploy of the program to p1:\n%s", out)
		}
		if got := p1.Sh(t, "cat /run/forgelab/web/pid; curl -fsS http://127.0.0.1:18080/healthz"); got == pid+"ok\n" || !strings.HasSuffix(got, "ok\n") {
			t.Errorf("web not restarted, or not answering: %q (was pid %s)", got, pid)
		}
	})

	// Destroy while a workload still runs on p2: it is ended there too.
	if procs := p2.Processes(t); len(procs) == 0 {
		t.Errorf("the forever workload is not running on p2")
	}
	start = time.Now()
	mustForgelab(t, "destroy", lab)
	t.Logf("destroy took %s", time.Since(start).Round(time.Millisecond))
	assertNothingLeft(t, lab)
	if after := p1.Snapshot(t); after != before1 {
		t.Errorf("p1 is not as it was:\n%s", diffLines(before1, after))
	}
	if after := p2.Snapshot(t); after != before2 {
		t.Errorf("p2 is not as it was:\n%s", diffLines(before2, after))
	}
	for _, h := range []*sshtest.Host{p1, p2} {
		if procs := h.Processes(t); len(procs) > 0 {
			t.Errorf("processes left on %s: %v", h.Name, procs)
		}
	}
}

// diffLines shows the lines only in a or only in b.
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPhysicalBadInputs: each broken lab fails create with a clear error,
// and leaves nothing behind, on this machine or on the host.
func TestPhysicalBadInputs(t *testing.T) {
	requirePhysical(t)
	const lab = "fltest-physbad"
	forgelab(t, "destroy", lab)
	nw := sshtest.NewNet(t)
	h := nw.AddHost("p1", "")
	before := h.Snapshot(t)
	dir := t.TempDir()
	buildDemo(t, filepath.Join(dir, "app"))
	noKnown := filepath.Join(dir, "no_known_hosts")
	host := func(ssh string) string {
		return fmt.Sprintf("[lab]\nname = %q\n[[host]]\nname = \"p1\"\nkind = \"physical\"\nssh = %s\n", lab, ssh)
	}
	good := host(h.SSHSpec())
	fp := ssh.FingerprintSHA256(h.HostKey)
	cases := []struct {
		name, text string
		want       []string
	}{
		{"unknown host key", host(fmt.Sprintf(`{ address = %q, key = %q, known_hosts = %q }`, h.IP, h.Key, noKnown)),
			[]string{"host p1: host key of " + h.IP + ":22 is not known: ssh-ed25519 " + fp, "trust_on_first_use = true", "or add this line to " + noKnown}},
		{"wrong key", host(fmt.Sprintf(`{ address = %q, key = %q, known_hosts = %q }`, h.IP, h.WrongKey, h.KnownHosts)),
			[]string{"host p1: login as root@" + h.IP + ":22 refused", "id_wrong (SHA256:"}},
		{"unreachable host", host(fmt.Sprintf(`{ address = %q, key = %q, known_hosts = %q }`, nw.Prefix+".99", h.Key, h.KnownHosts)),
			[]string{"host p1: cannot reach " + nw.Prefix + ".99:22"}},
		{"missing source file", good + "[[deploy]]\nsrc = \"app/bin/nope\"\ndst = \"/opt/demo/\"\n",
			[]string{"lab.toml:8: deploy #1: src \"app/bin/nope\" does not exist"}},
		{"service never ready", good + `[[deploy]]
src = "app"
dst = "/opt/demo"
[[service]]
name = "stuck"
command = "echo starting; echo 'fatal: no config in /etc/stuck' >&2; exec sleep 1000"
ready = "tcp://127.0.0.1:1"
ready_timeout = "3s"
`, []string{"service stuck on host p1 not ready after ", "check tcp://127.0.0.1:1", "| fatal: no config in /etc/stuck"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "lab.toml")
			os.WriteFile(file, []byte(tc.text), 0o644)
			start := time.Now()
			r := forgelab(t, "create", file)
			t.Logf("failed in %s:\n%s", time.Since(start).Round(time.Millisecond), r.stderr)
			if r.code == 0 {
				forgelab(t, "destroy", lab)
				t.Fatalf("create succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error lacks %q", w)
				}
			}
			assertNothingLeft(t, lab)
			if after := h.Snapshot(t); after != before {
				t.Errorf("the host changed:\n%s", diffLines(before, after))
			}
			if procs := h.Processes(t); len(procs) > 0 {
				t.Errorf("processes left on the host: %v", procs)
			}
		})
	}
}

// vmSnapshot is what a lab could change on a VM it adopts: files under
// /opt, /etc, /srv, /usr/local and /var/lib/forgelab-adopted, the network
// devices and qdiscs, and the systemd units named forgelab-*.
const vmSnapshot = `sudo sh -c '
dirs="/opt /etc /srv /usr/local /var/lib/forgelab-adopted"
find $dirs \( -type d -printf "%y %m %u:%g %p\n" \) -o -printf "%y %m %u:%g %s %T@ %p -> %l\n" 2>/dev/null | grep -v -e " /etc/ld.so.cache" | sort
find $dirs -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
ip -d -o link show
ip -o addr show | awk "{print \$2, \$3, \$4}"
tc qdisc show
systemctl list-units --all --no-legend "forgelab-*"
'`

// TestSoftwareLab is the whole story on real VMs: a lab of two
// VMs, a "physical host" (a network namespace running sshd) and a VM of
// another lab adopted over SSH as a second physical host; a tree and a
// template deployed to all of them, a service (systemd units on the VMs)
// with a readiness check, the quickstart's sender and receiver over a
// link between VMs reporting JSON, a barrier between a VM and the
// namespace host, links to both physical hosts over VXLAN, a redeploy
// that sends only what changed; then destroy, after which both adopted
// hosts are byte for byte what they were. Boots: 1 + 2 VMs.
func TestSoftwareLab(t *testing.T) {
	requireVMs(t)
	requirePhysical(t)
	const lab, outside = "fltest-soft", "fltest-outside"
	forgelab(t, "destroy", lab, outside)
	t.Cleanup(func() {
		forgelab(t, "destroy", lab, outside)
		assertNothingLeft(t, lab)
		assertNothingLeft(t, outside)
	})
	nw := sshtest.NewNet(t)
	p1 := nw.AddHost("p1", "mkdir -p /opt/keep && echo \"owner's\" > /opt/keep/data")
	before1 := p1.Snapshot(t)

	// The VM that is not part of the lab.
	start := time.Now()
	r := forgelab(t, "create", writeLab(t, fmt.Sprintf("[lab]\nname = %q\n[[host]]\nname = \"x\"\n", outside)))
	if r.code != 0 {
		t.Fatalf("create %s: exit %d\n%s", outside, r.code, r.stderr)
	}
	t.Logf("create of the outside VM took %s", time.Since(start).Round(time.Second))
	xInfo := inspect(t, outside)
	xIP := xInfo.Hosts[0].MgmtIP
	xDir := filepath.Join(stateDir(), "labs", outside)
	// The owner's things on x, which the lab must leave alone.
	mustForgelab(t, "exec", outside, "x", "--", "sudo mkdir -p /opt/keep && echo mine | sudo tee /opt/keep/data >/dev/null && sudo tc qdisc show dev eth0 >/dev/null")
	beforeX := mustForgelab(t, "exec", outside, "x", "--", vmSnapshot)

	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	buildDemo(t, app)
	os.WriteFile(filepath.Join(app, "README"), []byte("v1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "peers.conf"), []byte("me={{ .Name }} peers={{ join .Peers \",\" }} b={{ ip \"b\" \"ab\" }}\n"), 0o644)
	text := fmt.Sprintf(`
[lab]
name = %q
[[host]]
name = "a"
[[host]]
name = "b"
[[host]]
name = "p1"
kind = "physical"
ssh = %s
[[host]]
name = "x"
kind = "physical"
ssh = { address = %q, user = "lab", key = %q, known_hosts = %q }
[[link]]
name = "ab"
endpoints = ["a", "b"]
[[link]]
name = "ap"
endpoints = ["a", "p1"]
[[link]]
name = "bx"
endpoints = ["b", "x"]
[[deploy]]
src = "app"
dst = "/opt/demo"
[[deploy]]
src = "peers.conf"
dst = "/etc/demo/peers.conf"
template = true
[[service]]
name = "web"
hosts = ["a", "x"]
command = "/opt/demo/bin/demo serve --listen 127.0.0.1:18080"
ready = "http://127.0.0.1:18080/healthz"
env = { DEMO_SECRET = '%s' }
[[workload]]
name = "receiver"
host = "b"
command = "/opt/demo/bin/demo recv --listen :9000 --for 2m --signal receiver-up --until-signal sender-done"
[[workload]]
name = "sender"
host = "a"
command = "/opt/demo/bin/demo send --to {{ ip \"b\" \"ab\" }}:9000 --rate 200 --for 5s --wait-signal receiver-up --done-signal sender-done"
[[workload]]
name = "meet"
hosts = ["a", "p1"]
command = "if [ $FORGELAB_HOST = p1 ]; then exec /opt/demo/bin/demo barrier --await a-here --delay 2s start 2; else exec /opt/demo/bin/demo barrier --raise a-here start 2; fi"
`, lab, p1.SSHSpec(), xIP, filepath.Join(xDir, "id_ed25519"), filepath.Join(xDir, "known_hosts"), demoSecret)
	file := filepath.Join(dir, "lab.toml")
	os.WriteFile(file, []byte(text), 0o644)
	start = time.Now()
	r = forgelab(t, "create", "--parallel", "2", file)
	if r.code != 0 {
		t.Fatalf("create: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("create of 2 VMs + 2 physical hosts took %s:\n%s", time.Since(start).Round(time.Second), r.stderr)
	info := inspect(t, lab)

	t.Run("inspect", func(t *testing.T) {
		for _, h := range info.Hosts {
			want := map[string]string{"a": "running", "b": "running", "p1": "adopted", "x": "adopted"}[h.Name]
			if h.State != want || !h.Ready {
				t.Errorf("host %s: state %s (want %s), ready %v", h.Name, h.State, want, h.Ready)
			}
		}
	})
	t.Run("deployed", func(t *testing.T) {
		bAB := addrOn(info, "b", "ab", false)
		for _, h := range []string{"a", "b", "p1", "x"} {
			l := lab
			if h == "x" {
				l = outside // the test's own look, with the outside lab's access
			}
			out := mustForgelab(t, "exec", l, h, "--", "cat /etc/demo/peers.conf; stat -c %a /opt/demo/bin/demo")
			if !strings.HasPrefix(out, "me="+h+" ") || !strings.Contains(out, "b="+bAB+"\n755\n") {
				t.Errorf("on %s: %q", h, out)
			}
		}
	})
	t.Run("service is a systemd unit", func(t *testing.T) {
		for _, h := range []string{"a", "x"} {
			out := mustForgelab(t, "exec", lab, h, "--", `systemctl is-active forgelab-web.service; bash -c 'exec 3<>/dev/tcp/127.0.0.1/18080; printf "GET /healthz HTTP/1.0\r\n\r\n" >&3; tail -n 1 <&3'`)
			if out != "active\nok\n" {
				t.Errorf("web on %s: %q", h, out)
			}
		}
		if out := mustForgelab(t, "logs", lab, "x", "web"); !strings.Contains(out, "serving on http://127.0.0.1:18080") {
			t.Errorf("logs of web on x:\n%s", out)
		}
	})
	t.Run("secrets", func(t *testing.T) { secretChecks(t, lab, "a") })
	t.Run("links to physical hosts", func(t *testing.T) {
		for _, c := range []struct{ from, to, link string }{{"a", "p1", "ap"}, {"x", "b", "bx"}, {"p1", "a", "ap"}} {
			addr := addrOn(info, c.to, c.link, false)
			r := forgelab(t, "exec", lab, c.from, "--", "ping -c 3 -i 0.3 -W 3 "+addr)
			if r.code != 0 || !strings.Contains(r.stdout, " 0% packet loss") {
				t.Errorf("%s -> %s over %s (%s): exit %d\n%s%s", c.from, c.to, c.link, addr, r.code, r.stdout, r.stderr)
			}
		}
	})
	t.Run("workloads", func(t *testing.T) {
		ws := workloadsJSON(t, lab)
		for k, w := range ws {
			if w["state"] != "exited" || w["exit_code"] != float64(0) {
				t.Errorf("%s: %v", k, w)
			}
		}
		recv := metrics(t, ws["receiver@b"])
		if len(recv) < 3 {
			t.Fatalf("receiver metrics: %v", recv)
		}
		send := metrics(t, ws["sender@a"])
		final, sent := recv[len(recv)-1], send[len(send)-1]
		if final["final"] != true || sent["final"] != true || final["packets"].(float64) < 0.95*sent["sent"].(float64) || sent["sent"].(float64) < 900 {
			t.Errorf("over link ab the sender sent %v packets, the receiver got %v (lost %v)", sent["sent"], final["packets"], final["lost"])
		}
		checkBarrier(t, ws, "a", "p1")
		t.Logf("receiver's last lines: %v", recv[max(0, len(recv)-2):])
	})
	t.Run("redeploy", func(t *testing.T) {
		os.WriteFile(filepath.Join(app, "README"), []byte("v2\n"), 0o644)
		out := mustForgelab(t, "deploy", lab)
		for _, h := range []string{"a", "b", "p1", "x"} {
			if !regexp.MustCompile(`(?m)^` + h + `\s+1 sent \(3 bytes\), 2 unchanged, 0 fixed$`).MatchString(out) {
				t.Errorf("redeploy to %s:\n%s", h, out)
			}
		}
	})

	start = time.Now()
	mustForgelab(t, "destroy", lab)
	t.Logf("destroy took %s", time.Since(start).Round(time.Millisecond))
	assertNothingLeft(t, lab)
	if after := p1.Snapshot(t); after != before1 {
		t.Errorf("p1 is not as it was:\n%s", diffLines(before1, after))
	}
	if procs := p1.Processes(t); len(procs) > 0 {
		t.Errorf("processes left on p1: %v", procs)
	}
	if afterX := mustForgelab(t, "exec", outside, "x", "--", vmSnapshot); afterX != beforeX {
		t.Errorf("x is not as it was:\n%s", diffLines(beforeX, afterX))
	}
	qemuGaveBack(t, outside, "x")
	mustForgelab(t, "destroy", outside)
	assertNothingLeft(t, outside)
}

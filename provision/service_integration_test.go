package provision

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A user with passwordless sudo, made inside the fake host only (its /etc
// and /var are overlays).
const sudoUser = `useradd -M -d /var/lib/fltp-lab -s /bin/sh lab
usermod -p '*' lab
mkdir -p /var/lib/fltp-lab && chown lab: /var/lib/fltp-lab
echo 'lab ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/fltp-lab
chmod 440 /etc/sudoers.d/fltp-lab
` + ownersFiles

// The same life as TestAdoptUndoIntegration, logged in as a user who gets
// root through sudo: sftp-server runs through sudo, chown and tc too.
func TestAdoptSudoUserIntegration(t *testing.T) {
	if _, err := os.Stat("/usr/bin/sudo"); err != nil {
		msg := "needs sudo installed (apt-get install sudo) to test logins through sudo"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ln := newLabNet(t)
	host := ln.addHost("sudo", sudoUser)
	look := host.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	before := snapshot(t, look, areas...)
	qdiscBefore := sh(t, look, "tc qdisc show dev eth0")

	ph := host.physical(t)
	ph.User = "lab"
	a, err := Adopt(ctx, ph, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, c := range a.Checks {
		if c.Name == "sudo" && c.Detail != "passwordless sudo works" {
			t.Fatalf("sudo check: %+v", c)
		}
	}
	src := sourceTree(t)
	rep, err := a.Client.Deploy(ctx, Deploy{Src: src, Dst: "/opt/mynet", Owner: "lab"}, a.DeployOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := sh(t, look, "stat -c '%U %a' /opt/mynet/bin/helper /opt/mynet/etc/mynet.conf"); got != "lab 4755\nlab 640\n" {
		t.Fatalf("owner/mode through sudo: %q (%v)", got, rep)
	}
	svcs, err := NewServices(ctx, a.Client, a.ServiceOptions())
	if err != nil {
		t.Fatal(err)
	}
	svc := Service{Name: "mynet", Command: "bin/mynetd; exec sleep 300", WorkDir: "/opt/mynet", User: "lab", Ready: "cmd:pgrep -u lab -f 'sleep 300'", ReadyTimeout: 20 * time.Second}
	if err := svcs.Up(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceQdisc(ctx, a.Client, a.Journal, "eth0", "htb default 1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Undo(ctx); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, look, areas...); after != before {
		t.Fatalf("host not restored:\n%s", diffLines(before, after))
	}
	if got := sh(t, look, "tc qdisc show dev eth0"); got != qdiscBefore {
		t.Fatalf("qdisc %q, was %q", got, qdiscBefore)
	}
}

// vmTarget reads FORGELAB_TEST_SSH=user@addr:port and FORGELAB_TEST_SSH_KEY
// (a lab VM, or any disposable host with systemd). Without them, and with a
// forgelab binary in FORGELAB_BIN (as `make test` sets it), it boots one
// lab VM for the whole package (destroyed in TestMain). Without either the
// test fails under CI=true and skips elsewhere.
func vmTarget(t *testing.T) PhysicalHost {
	spec, key := os.Getenv("FORGELAB_TEST_SSH"), os.Getenv("FORGELAB_TEST_SSH_KEY")
	if spec == "" || key == "" {
		if testing.Short() {
			t.Skip("systemd test against a VM: skipped with -short")
		}
		if err := sharedVM.start(); err != nil {
			msg := "set FORGELAB_TEST_SSH=user@addr:port and FORGELAB_TEST_SSH_KEY=/path/to/key to run the systemd tests against a disposable host with systemd, or FORGELAB_BIN=/path/to/forgelab (make test does) to boot a lab VM for them: " + err.Error()
			if os.Getenv("CI") == "true" || os.Getenv("FORGELAB_TEST_SSH_REQUIRED") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		spec, key = sharedVM.spec, sharedVM.key
		t.Setenv("FORGELAB_TEST_SSH_KNOWN_HOSTS", sharedVM.knownHosts)
	}
	user, hostport, ok := strings.Cut(spec, "@")
	if !ok {
		t.Fatalf("FORGELAB_TEST_SSH=%q: want user@addr:port", spec)
	}
	addr, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		addr, portStr = hostport, "22"
	}
	port, _ := strconv.Atoi(portStr)
	ph := PhysicalHost{Name: "vm", Lab: "fltest", Address: addr, Port: port, User: user, KeyPath: key,
		KnownHosts: os.Getenv("FORGELAB_TEST_SSH_KNOWN_HOSTS"), RequireSystemd: true, ConnectTimeout: 30 * time.Second}
	if ph.KnownHosts == "" {
		ph.KnownHosts, ph.TrustOnFirstUse = filepath.Join(t.TempDir(), "known_hosts"), true
	}
	return ph
}

// Services as systemd units, against a real systemd.
func TestSystemdServiceVM(t *testing.T) {
	ph := vmTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a, err := Adopt(ctx, ph, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	vmAreas := []string{"/etc/systemd/system", "/opt", "/var/lib/forgelab-adopted"}
	before := snapshot(t, a.Client, vmAreas...)
	svcs, err := NewServices(ctx, a.Client, a.ServiceOptions())
	if err != nil {
		t.Fatal(err)
	}
	if svcs.Manager() != ManagerSystemd {
		t.Fatalf("manager %s", svcs.Manager())
	}
	src := writeTree(t, map[string]string{"server.py": "import http.server\nprint('listening', flush=True)\nhttp.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=18080, bind='127.0.0.1')\n"})
	if _, err := a.Client.Deploy(ctx, Deploy{Src: src, Dst: "/opt/fltest"}, a.DeployOptions(nil)); err != nil {
		t.Fatal(err)
	}
	web := Service{Name: "fltest-web", Command: "exec python3 -u server.py", WorkDir: "/opt/fltest", Env: map[string]string{"X": "100% $y"},
		Ready: "http://127.0.0.1:18080/", ReadyTimeout: 60 * time.Second}
	if err := svcs.Up(ctx, web); err != nil {
		t.Fatal(err)
	}
	st, err := svcs.Status(ctx, web.Name)
	if err != nil || !st.Active() || st.PID == 0 {
		t.Fatalf("status %+v %v", st, err)
	}
	if env := sh(t, a.Client, "sudo cat /proc/"+strconv.Itoa(st.PID)+"/environ | tr '\\0' '\\n' | grep '^X='"); env != "X=100% $y\n" {
		t.Fatalf("environment through the unit: %q", env)
	}
	var logs strings.Builder
	if err := svcs.Logs(ctx, web.Name, 50, false, &logs); err != nil || !strings.Contains(logs.String(), "listening") {
		t.Fatalf("journal: %q %v", logs.String(), err)
	}
	// Follow: returns when ctx ends.
	fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
	var followed strings.Builder
	if err := svcs.Logs(fctx, web.Name, 5, true, &followed); err != nil {
		t.Fatalf("follow: %v", err)
	}
	fcancel()
	if err := svcs.Restart(ctx, web.Name); err != nil {
		t.Fatal(err)
	}
	if err := svcs.WaitReady(ctx, web); err != nil {
		t.Fatal(err)
	}
	stuck := Service{Name: "fltest-stuck", Command: "echo starting up; echo 'bad config' >&2; sleep 300", Ready: "tcp://127.0.0.1:7999", ReadyTimeout: 5 * time.Second}
	err = svcs.Up(ctx, stuck)
	var nr *NotReadyError
	if !errors.As(err, &nr) || !strings.Contains(err.Error(), "bad config") {
		t.Fatalf("never ready: %v", err)
	}
	t.Logf("%v", err)
	if err := svcs.Stop(ctx, web.Name); err != nil {
		t.Fatal(err)
	}
	if err := a.Undo(ctx); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, a.Client, vmAreas...); after != before {
		t.Fatalf("VM not restored:\n%s", diffLines(before, after))
	}
	if out := sh(t, a.Client, "systemctl list-units --all --no-legend 'forgelab-fltest-*' | wc -l"); strings.TrimSpace(out) != "0" {
		t.Fatalf("units left: %s", out)
	}
}

package provision

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What the owner of the "physical host" had before forgelab came.
const ownersFiles = `mkdir -p /opt/mynet/etc /opt/keep
echo "owner's config" > /opt/mynet/etc/mynet.conf
chmod 600 /opt/mynet/etc/mynet.conf
touch -d '2020-01-02 03:04:05' /opt/mynet/etc/mynet.conf
printf 'elf' > /opt/mynet/same.so
chmod 700 /opt/mynet/same.so
echo "not ours" > /opt/keep/data
ln -s /opt/keep/data /opt/mynet/link-to-keep
`

// areas is everything forgelab may touch on an adopted host.
var areas = []string{"/opt", "/etc", "/run", "/var/lib/forgelab-adopted"}

// The full life of an adopted host: adopt, deploy over the owner's files,
// a service with a readiness check, a qdisc, a workload; then, from the
// persisted journal only (as a later `forgelab destroy` would), undo; and
// the host is byte for byte what it was.
func TestAdoptUndoIntegration(t *testing.T) {
	ln := newLabNet(t)
	host := ln.addHost("edge1", ownersFiles)
	look := host.connect(t) // the test's own view of the host
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	before := snapshot(t, look, areas...)
	qdiscBefore := sh(t, look, "tc qdisc show dev eth0")

	// The lab's state: the journal is saved after every entry.
	stateFile := filepath.Join(t.TempDir(), "journal.json")
	persist := func(j *Journal) error {
		data, err := json.MarshalIndent(j, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(stateFile, data, 0o600)
	}
	j := NewJournal("edge1")
	j.Save = persist
	ph := host.physical(t)
	a, err := Adopt(ctx, ph, j)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range a.Checks {
		t.Logf("check %-16s ok=%-5v %s", c.Name, c.OK, c.Detail)
	}

	src := writeTree(t, map[string]string{
		"etc/mynet.conf": "forgelab's config\n",
		"same.so":        "elf",
		"link-to-keep":   "x", // replaces the owner's symlink with a file
		"bin/server.py":  "import http.server, sys\nprint('listening', flush=True)\nhttp.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind='127.0.0.1')\n",
		"new/dir/file":   "new",
	})
	os.Chmod(filepath.Join(src, "same.so"), 0o755) // same content, other mode
	rep, err := a.Client.Deploy(ctx, Deploy{Src: src, Dst: "/opt/mynet"}, a.DeployOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 4 || rep.Updated != 1 {
		t.Fatalf("deploy over the owner's files: %v", rep)
	}
	// And one file into a directory that does not exist yet, two levels deep.
	if _, err := a.Client.Deploy(ctx, Deploy{Src: filepath.Join(src, "new/dir/file"), Dst: "/etc/mynet/conf.d/"}, a.DeployOptions(nil)); err != nil {
		t.Fatal(err)
	}

	svcs, err := NewServices(ctx, a.Client, a.ServiceOptions())
	if err != nil {
		t.Fatal(err)
	}
	if svcs.Manager() != ManagerProcess {
		t.Fatalf("manager %s on a host without systemd", svcs.Manager())
	}
	web := Service{Name: "web", Command: "exec python3 bin/server.py 18080", WorkDir: "/opt/mynet", Ready: "http://127.0.0.1:18080/", ReadyTimeout: 30 * time.Second}
	start := time.Now()
	if err := svcs.Up(ctx, web); err != nil {
		t.Fatal(err)
	}
	t.Logf("service web ready after %s", time.Since(start).Round(time.Millisecond))
	st, err := svcs.Status(ctx, "web")
	if err != nil || !st.Active() || st.PID == 0 {
		t.Fatalf("status %+v %v", st, err)
	}
	var logs strings.Builder
	if err := svcs.Logs(ctx, "web", 20, false, &logs); err != nil || !strings.Contains(logs.String(), "listening") {
		t.Fatalf("logs %q %v", logs.String(), err)
	}
	// forgelab logs LAB HOST -f: every service, until interrupted.
	fctx, fcancel := context.WithTimeout(ctx, time.Second)
	var all strings.Builder
	if err := svcs.Logs(fctx, "", 0, true, &all); err != nil || !strings.Contains(all.String(), "listening") {
		t.Fatalf("logs -f of all services: %q %v", all.String(), err)
	}
	fcancel()

	if err := ReplaceQdisc(ctx, a.Client, a.Journal, "eth0", "htb default 1"); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceQdisc(ctx, a.Client, a.Journal, "eth0", "htb default 2"); err != nil {
		t.Fatal(err)
	}
	if got := sh(t, look, "tc qdisc show dev eth0"); !strings.Contains(got, "htb") {
		t.Fatalf("qdisc not replaced: %s", got)
	}

	if changed := snapshot(t, look, areas...); changed == before {
		t.Fatal("nothing changed on the host: the test proves nothing")
	}
	a.Close()

	// Later, another forgelab process: only the persisted journal.
	data, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	var saved Journal
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ch := range saved.Changes {
		kinds = append(kinds, string(ch.Kind))
	}
	t.Logf("journal: %d changes: %s", len(saved.Changes), strings.Join(kinds, " "))
	saved.Save = persist
	a2, err := Adopt(ctx, ph, &saved)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if err := a2.Undo(ctx); err != nil {
		t.Fatal(err)
	}
	if len(saved.Changes) != 0 {
		t.Fatalf("journal after undo: %+v", saved.Changes)
	}
	after := snapshot(t, look, areas...)
	if after != before {
		t.Fatalf("host not restored:\n%s", diffLines(before, after))
	}
	if got := sh(t, look, "tc qdisc show dev eth0"); got != qdiscBefore {
		t.Fatalf("qdisc not restored: %q, was %q", got, qdiscBefore)
	}
	if got := sh(t, look, "ps -eo args | grep -c '[s]erver.py' || true"); strings.TrimSpace(got) != "0" {
		t.Fatalf("service still running (%s)", got)
	}
}

// A service that never gets ready: the error carries its log, and undo
// leaves nothing behind.
func TestServiceNeverReadyIntegration(t *testing.T) {
	ln := newLabNet(t)
	host := ln.addHost("slow", "")
	look := host.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := snapshot(t, look, areas...)
	a, err := Adopt(ctx, host.physical(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	svcs, err := NewServices(ctx, a.Client, a.ServiceOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		svc  Service
		want []string
	}{
		{Service{Name: "stuck", Command: "echo starting up; echo 'bind 127.0.0.1:7000: address in use' >&2; sleep 317",
			Ready: "tcp://127.0.0.1:7000", ReadyTimeout: 3 * time.Second},
			[]string{"service stuck on host slow not ready after 3", "tcp://127.0.0.1:7000", "| starting up", "| bind 127.0.0.1:7000: address in use"}},
		{Service{Name: "crash", Command: "echo bad flag --x; exit 2", Restart: "no", Ready: "tcp://127.0.0.1:7001", ReadyTimeout: 30 * time.Second},
			[]string{"service crash on host slow not ready", "it is inactive", "| bad flag --x", "exited with status 2"}},
		{Service{Name: "cmdcheck", Command: "sleep 317", Ready: "cmd:test -e /run/never", ReadyTimeout: 2 * time.Second},
			[]string{"not ready after 2", "cmd:test -e /run/never"}},
	} {
		start := time.Now()
		err := svcs.Up(ctx, tc.svc)
		var nr *NotReadyError
		if !errors.As(err, &nr) {
			t.Fatalf("%s: got %v, want NotReadyError", tc.svc.Name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q:\n%v", tc.svc.Name, w, err)
			}
		}
		if took := time.Since(start); took > tc.svc.ReadyTimeout+10*time.Second {
			t.Errorf("%s: took %s", tc.svc.Name, took)
		}
		t.Logf("%s (%s):\n%v", tc.svc.Name, time.Since(start).Round(time.Millisecond), err)
	}
	if err := a.Undo(ctx); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, look, areas...); after != before {
		t.Fatalf("left behind:\n%s", diffLines(before, after))
	}
	// 317: no other test sleeps that long, and ps sees the whole machine.
	if got := sh(t, look, "ps -eo args | grep -c '[s]leep 317' || true"); strings.TrimSpace(got) != "0" {
		t.Fatal("service process left running")
	}
}

// Bad input at adoption: clear, typed errors, and nothing changed.
func TestAdoptBadInputIntegration(t *testing.T) {
	ln := newLabNet(t)
	host := ln.addHost("bad", "")
	look := host.connect(t)
	before := snapshot(t, look, areas...)
	ctx := context.Background()

	t.Run("unknown host key is refused with its fingerprint", func(t *testing.T) {
		ph := host.physical(t)
		ph.KnownHosts = filepath.Join(t.TempDir(), "known_hosts") // empty lab
		_, err := Adopt(ctx, ph, nil)
		var unknown *UnknownHostKeyError
		if !errors.As(err, &unknown) {
			t.Fatalf("got %v", err)
		}
		fp := "SHA256:" + strings.TrimPrefix(fingerprint(host), "SHA256:")
		for _, w := range []string{fp, "trust_on_first_use", ph.KnownHosts, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error lacks %q:\n%v", w, err)
			}
		}
		if _, err := os.Stat(ph.KnownHosts); !os.IsNotExist(err) {
			t.Error("known_hosts written without trust on first use")
		}
		t.Logf("%v", err)
	})

	t.Run("trust on first use saves the key", func(t *testing.T) {
		ph := host.physical(t)
		ph.KnownHosts = filepath.Join(t.TempDir(), "lab", "known_hosts")
		ph.TrustOnFirstUse = true
		a, err := Adopt(ctx, ph, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		data, _ := os.ReadFile(ph.KnownHosts)
		if string(data) != knownHostsLineFor(host.Addr, host.HostKey)+"\n" {
			t.Fatalf("known_hosts: %q", data)
		}
		ph.TrustOnFirstUse = false
		a, err = Adopt(ctx, ph, nil)
		if err != nil {
			t.Fatalf("second contact with the saved key: %v", err)
		}
		a.Close()
	})

	t.Run("changed host key is refused", func(t *testing.T) {
		other, _ := NewKeyPair("impostor")
		ph := host.physical(t)
		line, _ := KnownHostsLine(host.Addr, other.Public)
		os.WriteFile(ph.KnownHosts, []byte(line+"\n"), 0o600)
		ph.TrustOnFirstUse = true // never overrides a known key
		_, err := Adopt(ctx, ph, nil)
		if !errors.Is(err, ErrHostKey) || !IsHostKeyError(err) || !strings.Contains(err.Error(), "HOST KEY CHANGED") {
			t.Fatalf("got %v", err)
		}
		t.Logf("%v", err)
	})

	t.Run("wrong key", func(t *testing.T) {
		ph := host.physical(t)
		ph.KeyPath = host.WrongKey
		_, err := Adopt(ctx, ph, nil)
		var auth *AuthError
		if !errors.As(err, &auth) || !strings.Contains(err.Error(), "login as root@"+host.Addr+" refused") || !strings.Contains(err.Error(), "SHA256:") {
			t.Fatalf("got %v", err)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Fatal("key material in the error")
		}
		t.Logf("%v", err)
	})

	t.Run("missing key file", func(t *testing.T) {
		ph := host.physical(t)
		ph.KeyPath = filepath.Join(t.TempDir(), "nope")
		if _, err := Adopt(ctx, ph, nil); err == nil || !strings.Contains(err.Error(), "read key") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("unreachable host fails within the connect timeout", func(t *testing.T) {
		for _, addr := range []struct {
			ip   string
			port int
		}{{ln.prefix + ".200", 2222}, {host.IP, 2223}} { // nobody there; nothing listening
			ph := host.physical(t)
			ph.Address, ph.Port, ph.ConnectTimeout = addr.ip, addr.port, 3*time.Second
			start := time.Now()
			_, err := Adopt(ctx, ph, nil)
			took := time.Since(start)
			var un *UnreachableError
			if !errors.As(err, &un) || !strings.Contains(err.Error(), "cannot reach") {
				t.Fatalf("%s: got %v", addr.ip, err)
			}
			if took > 5*time.Second {
				t.Fatalf("%s: took %s", addr.ip, took)
			}
			t.Logf("%s after %s", err, took.Round(time.Millisecond))
		}
	})

	t.Run("every missing prerequisite at once", func(t *testing.T) {
		ph := host.physical(t)
		ph.RequireSystemd, ph.MinFreeBytes = true, 1<<60
		_, err := Adopt(ctx, ph, nil)
		var m *MissingError
		if !errors.As(err, &m) || len(m.Missing) != 2 || !strings.Contains(err.Error(), "systemd") || !strings.Contains(err.Error(), "free space on /") {
			t.Fatalf("got %v", err)
		}
		t.Logf("%v", err)
	})

	if after := snapshot(t, look, areas...); after != before {
		t.Fatalf("bad input changed the host:\n%s", diffLines(before, after))
	}
}

func fingerprint(h *fakeHost) string {
	out, _ := execIn("/", "ssh-keygen -lf "+ShellQuote(filepath.Join(h.Dir, "ssh_host_ed25519_key.pub"))+" | cut -d' ' -f2")
	return strings.TrimSpace(out)
}

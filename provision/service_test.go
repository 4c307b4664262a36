package provision

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", t.Name(), file, got, want)
	}
}

var goldenServices = map[string]Service{
	"unit-minimal": {Name: "web", Command: "/opt/web/bin/webd --port 8080"},
	"unit-oneshot": {Name: "routes", Command: "#!/bin/sh\nset -e\nip link add node0 type dummy\nip addr replace 10.254.1.1/32 dev node0\n", Oneshot: true,
		Undo: "ip link del node0"},
	"unit-full": {
		Name:    "mynet",
		Command: `/opt/mynet/bin/mynetd --peers 10.1.0.2,10.9.0.3 --log "$STATE_DIRECTORY/x" --rate 50% \ "quoted"`,
		WorkDir: "/opt/mynet/100%",
		Env:     map[string]string{"RUST_LOG": "debug", "GREETING": `say "hi" 100% $HOME`},
		Restart: "always",
		User:    "mynet",
		Ready:   "tcp://127.0.0.1:7000",
	},
}

func TestUnitFileGolden(t *testing.T) {
	for name, svc := range goldenServices {
		t.Run(name, func(t *testing.T) {
			unit, err := svc.UnitFile()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".service", unit)
			if path, err := exec.LookPath("systemd-analyze"); err == nil {
				// systemd's own parser, where present, must accept it.
				dir := t.TempDir()
				f := filepath.Join(dir, svc.Unit())
				os.WriteFile(f, []byte(unit), 0o644)
				if out, err := exec.Command(path, "verify", "--man=no", f).CombinedOutput(); err != nil || len(out) > 0 {
					t.Errorf("systemd-analyze verify: %v\n%s", err, out)
				}
			}
		})
	}
}

// The environment goes to a root-only file the unit names: the unit file,
// which every user of the host reads, holds no value.
func TestEnvFileGolden(t *testing.T) {
	svc := goldenServices["unit-full"]
	svc.Env = map[string]string{"GREETING": svc.Env["GREETING"], "TOKEN": "s3cret-`x` \\ \"q\" $HOME\nline2"}
	text, err := svc.EnvFileText()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "unit-full.env", text)
	unit, err := svc.UnitFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(unit, "s3cret") || strings.Contains(unit, "say") || !strings.Contains(unit, "\nEnvironmentFile=/etc/forgelab/mynet.env\n") {
		t.Errorf("unit file:\n%s", unit)
	}
	if _, err := (Service{Name: "x", Env: map[string]string{"A-B": "1"}}).EnvFileText(); err == nil {
		t.Error("bad variable name accepted")
	}
}

func TestSupervisorScriptGolden(t *testing.T) {
	script, err := goldenServices["unit-full"].supervisorScript()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "supervisor-full.sh", script)
	if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v: %s", err, out)
	}
}

// The supervisor really applies the restart policies (run locally by sh).
func TestSupervisorRestartPolicy(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no sh/setsid")
	}
	for _, tc := range []struct {
		restart string
		exit    int
		runs    int
	}{
		{"no", 3, 1},
		{"on-failure", 0, 1},
		{"on-success", 3, 1},
	} {
		dir := t.TempDir()
		svc := Service{Name: "t", Command: "echo run; exit " + string(rune('0'+tc.exit)), Restart: tc.restart, WorkDir: dir}
		script, err := svc.supervisorScript()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", script)
		done := make(chan struct{})
		var out []byte
		go func() { out, _ = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("restart=%s exit %d: supervisor did not stop", tc.restart, tc.exit)
		}
		if got := strings.Count(string(out), "run\n"); got != tc.runs {
			t.Errorf("restart=%s exit %d: ran %d times, want %d:\n%s", tc.restart, tc.exit, got, tc.runs, out)
		}
	}
}

func TestServiceValidate(t *testing.T) {
	ok := Service{Name: "web", Command: "true"}
	for _, tc := range []struct {
		name string
		edit func(*Service)
		want string // "" = valid
	}{
		{"ok", func(*Service) {}, ""},
		{"bad name", func(s *Service) { s.Name = "a/b" }, "service name"},
		{"unit suffix trick", func(s *Service) { s.Name = "x.service\n" }, "service name"},
		{"empty command", func(s *Service) { s.Command = " " }, "command is empty"},
		{"relative workdir", func(s *Service) { s.WorkDir = "opt" }, "absolute"},
		{"bad user", func(s *Service) { s.User = "root; rm" }, "user"},
		{"bad restart", func(s *Service) { s.Restart = "sometimes" }, "restart"},
		{"bad env", func(s *Service) { s.Env = map[string]string{"1X": "y"} }, "environment variable"},
		{"bad ready", func(s *Service) { s.Ready = "udp://x:1" }, "want tcp://"},
		{"ready without port", func(s *Service) { s.Ready = "tcp://localhost" }, "HOST:PORT"},
		{"ready bad port", func(s *Service) { s.Ready = "tcp://localhost:99999" }, "port"},
		{"ready injection", func(s *Service) { s.Ready = "tcp://$(reboot):80" }, "host"},
		{"ready http", func(s *Service) { s.Ready = "http://127.0.0.1:8080/health" }, ""},
		{"ready cmd", func(s *Service) { s.Ready = "cmd:test -S /run/x.sock" }, ""},
		{"ready empty cmd", func(s *Service) { s.Ready = "cmd: " }, "empty"},
	} {
		s := ok
		tc.edit(&s)
		err := s.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want error with %q", tc.name, err, tc.want)
		}
	}
}

func TestReadyCommand(t *testing.T) {
	for _, tc := range []struct{ ready, want string }{
		{"", ""},
		{"tcp://127.0.0.1:7000", `timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/7000'`},
		{"tcp://[::1]:7000", `timeout 2 bash -c 'exec 3<>/dev/tcp/::1/7000'`},
		{"cmd:pgrep mynetd", "pgrep mynetd"},
	} {
		got, err := readyCommand(tc.ready)
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.ready, got, err, tc.want)
		}
	}
	got, _ := readyCommand("http://127.0.0.1:8080/health?x=1")
	for _, w := range []string{"curl -fsS -o /dev/null --max-time 2 'http://127.0.0.1:8080/health?x=1'", "/dev/tcp/127.0.0.1/8080", "GET /health?x=1 HTTP/1.0"} {
		if !strings.Contains(got, w) {
			t.Errorf("http check %q lacks %q", got, w)
		}
	}
}

func TestServiceAffected(t *testing.T) {
	s := Service{Name: "m", Command: "/opt/mynet/bin/mynetd -c /etc/mynet.conf", WorkDir: "/srv/mynet"}
	for _, tc := range []struct {
		changed []string
		uses    []string
		want    bool
	}{
		{[]string{"/opt/mynet/bin/mynetd"}, nil, true},
		{[]string{"/srv/mynet/data/x"}, nil, true},
		{[]string{"/srv/mynetwork/x"}, nil, false},
		{[]string{"/opt/other/x"}, nil, false},
		{[]string{"/etc/mynet.conf"}, []string{"/etc/mynet.conf", "/opt/mynet/"}, true},
		{[]string{"/opt/mynet/lib/x.so"}, []string{"/opt/mynet/"}, true},
	} {
		s.Uses = tc.uses
		if got := s.Affected(tc.changed); got != tc.want {
			t.Errorf("changed %v uses %v: got %v", tc.changed, tc.uses, got)
		}
	}
}

func TestServiceRendered(t *testing.T) {
	s := Service{Name: "m", Command: `mynetd --peers {{ join .Peers "," }} --me {{ ip .Host.Name "ab" }}`,
		Env: map[string]string{"PEER": `{{ ip "b" }}`}, Ready: `tcp://{{ ip "a" }}:7000`}
	r, err := s.Rendered(testFacts())
	if err != nil {
		t.Fatal(err)
	}
	if r.Command != "mynetd --peers b,c --me 10.1.0.1" || r.Env["PEER"] != "10.1.0.2" || r.Ready != "tcp://10.1.0.1:7000" {
		t.Fatalf("rendered %+v", r)
	}
	if s.Env["PEER"] != `{{ ip "b" }}` {
		t.Fatal("Rendered changed the original's map")
	}
	s.Command = "{{ .Nope }}"
	if _, err := s.Rendered(testFacts()); err == nil || !strings.Contains(err.Error(), "service m command") {
		t.Fatalf("error should name the template: %v", err)
	}
}

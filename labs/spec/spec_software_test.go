package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A deploy whose src is missing fails Load at the src line, before
// anything is made; relative paths start at the lab file's directory.
func TestLoadMissingSource(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "build", "app"), 0o755)
	lab := filepath.Join(dir, "lab.toml")
	os.WriteFile(lab, []byte(`[lab]
name = "t"
[[host]]
name = "a"
[[deploy]]
src = "build/app"
dst = "/opt/app"
[[deploy]]
dst = "/opt/other"
src = "build/missing"
`), 0o644)
	_, err := Load(lab)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Line != 10 ||
		!strings.Contains(err.Error(), `deploy #2: src "build/missing" does not exist (looked for `+filepath.Join(dir, "build", "missing")) {
		t.Fatalf("Load = %v, want one error at line 10 naming the resolved path", err)
	}
	// From another working directory the same file loads: src is relative to it.
	os.MkdirAll(filepath.Join(dir, "build", "missing"), 0o755)
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(t.TempDir())
	s, err := Load(lab)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.SourcePath(s.Deploys[0]); got != filepath.Join(dir, "build", "app") {
		t.Errorf("source path %s", got)
	}
}

func TestParseFileModes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want os.FileMode
	}{
		{"0644", 0o644},
		{"755", 0o755},
		{"4755", 0o755 | os.ModeSetuid},
		{"2770", 0o770 | os.ModeSetgid},
		{"1777", 0o777 | os.ModeSticky},
	} {
		s, err := Parse("m.toml", []byte("[lab]\nname = \"t\"\n[[host]]\nname = \"a\"\n[[deploy]]\nsrc = \"x\"\ndst = \"/opt/x\"\nmode = \""+tc.in+"\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := *s.Deploys[0].Mode; got != tc.want {
			t.Errorf("mode %q = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseSoftwareDefaults(t *testing.T) {
	s, err := Parse("d.toml", []byte(`[lab]
name = "t"
[[host]]
name = "a"
[[host]]
name = "b"
[[deploy]]
src = "x"
dst = "/opt/x/"
[[service]]
name = "s"
command = "sleep 1000"
[[workload]]
name = "w"
host = "b"
command = "true"
`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.HasSoftware() {
		t.Error("HasSoftware = false")
	}
	d, sv, w := s.Deploys[0], s.Services[0], s.Workloads[0]
	if d.Hosts != nil || d.Mode != nil || d.Template || !OnHost(d.Hosts, "a") || !OnHost(d.Hosts, "b") {
		t.Errorf("deploy defaults %+v", d)
	}
	if sv.Hosts != nil || sv.Restart != "" || sv.Ready != "" || sv.ReadyTimeout != 0 {
		t.Errorf("service defaults %+v", sv)
	}
	if len(w.Hosts) != 1 || w.Hosts[0] != "b" || w.Timeout != 0 || OnHost(w.Hosts, "a") {
		t.Errorf("workload %+v", w)
	}
}

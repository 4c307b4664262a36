package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCleanDst(t *testing.T) {
	for _, tc := range []struct{ dst, want, err string }{
		{"/opt/mynet", "/opt/mynet", ""},
		{"/opt/mynet/", "/opt/mynet", ""},
		{"/etc/mynet.conf", "/etc/mynet.conf", ""},
		{"/opt//a/./b", "/opt/a/b", ""},
		{"", "", "empty"},
		{"opt/mynet", "", "absolute"},
		{"/", "", "root directory"},
		{"//", "", "root directory"},
		{"/opt/../etc", "", `".."`},
		{"/opt/a/..", "", `".."`},
		{"/etc", "", "top-level"},
		{"/opt/", "", "top-level"},
		{"/proc/sys/x", "", "kernel filesystem"},
		{"/dev/sda", "", "kernel filesystem"},
	} {
		got, err := cleanDst(tc.dst)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: got %q, %v; want %q", tc.dst, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: got %q, %v; want error with %q", tc.dst, got, err, tc.err)
		}
	}
}

// writeTree makes files (path -> content; content "->x" makes a symlink to x,
// a path ending in / a directory) under a new temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestPlanTree(t *testing.T) {
	src := writeTree(t, map[string]string{
		"bin/app":        "#!/bin/sh\n",
		"lib/libx.so.1":  "elf",
		"lib/libx.so":    "->libx.so.1",
		"share/doc/a.md": "doc",
		"cache/x.tmp":    "skip me",
		"build.log":      "skip me too",
		"empty/":         "",
	})
	os.Chmod(filepath.Join(src, "bin/app"), 0o755)
	os.Chmod(filepath.Join(src, "share"), 0o750)
	p, err := planDeploy(Deploy{Src: src, Dst: "/opt/app/", Exclude: []string{"cache", "*.log"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.root != "/opt/app" || !p.tree {
		t.Fatalf("root %q tree %v", p.root, p.tree)
	}
	var got []string
	for _, e := range p.entries {
		got = append(got, e.kind.String()+" "+e.remote+" "+e.mode.String()+" "+e.link)
	}
	want := []string{
		"directory /opt/app/bin -rwxr-xr-x ",
		"directory /opt/app/empty -rwxr-xr-x ",
		"directory /opt/app/lib -rwxr-xr-x ",
		"directory /opt/app/share -rwxr-x--- ",
		"directory /opt/app/share/doc -rwxr-xr-x ",
		"file /opt/app/bin/app -rwxr-xr-x ",
		"symlink /opt/app/lib/libx.so ---------- libx.so.1",
		"file /opt/app/lib/libx.so.1 -rw-r--r-- ",
		"file /opt/app/share/doc/a.md -rw-r--r-- ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	sum := sha256.Sum256([]byte("doc"))
	if e := p.entries[len(p.entries)-1]; e.sum != hex.EncodeToString(sum[:]) || e.size != 3 {
		t.Errorf("sum %s size %d", e.sum, e.size)
	}
}

func TestPlanFile(t *testing.T) {
	src := writeTree(t, map[string]string{"mynetd": "bin", "current": "->mynetd"})
	file := filepath.Join(src, "mynetd")
	mode := os.FileMode(0o700)
	for _, tc := range []struct {
		d          Deploy
		root, path string
		mode       os.FileMode
	}{
		{Deploy{Src: file, Dst: "/usr/local/bin/"}, "/usr/local/bin", "/usr/local/bin/mynetd", 0o644},
		{Deploy{Src: file, Dst: "/usr/local/bin/mynet"}, "/usr/local/bin", "/usr/local/bin/mynet", 0o644},
		{Deploy{Src: file, Dst: "/opt/x", Mode: &mode}, "/opt", "/opt/x", 0o700},
		{Deploy{Src: file, Dst: "/etc/"}, "/etc", "/etc/mynetd", 0o644},
		{Deploy{Src: filepath.Join(src, "current"), Dst: "/usr/local/bin/"}, "/usr/local/bin", "/usr/local/bin/current", 0o644},
	} {
		p, err := planDeploy(tc.d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.root != tc.root || len(p.entries) != 1 || p.entries[0].remote != tc.path || p.entries[0].mode != tc.mode {
			t.Errorf("%+v: root %q entries %+v", tc.d, p.root, p.entries)
		}
	}
}

func TestPlanRefuses(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600)
	for _, tc := range []struct {
		name  string
		files map[string]string
		d     func(src string) Deploy
		want  string
	}{
		{"missing source", nil, func(src string) Deploy { return Deploy{Src: filepath.Join(src, "nope"), Dst: "/opt/a"} }, "does not exist"},
		{"absolute symlink", map[string]string{"etc": "->/etc"}, nil, "absolute target"},
		{"symlink up", map[string]string{"a/b": "->../../x"}, nil, "points outside"},
		{"symlink to parent", map[string]string{"up": "->.."}, nil, "points outside"},
		{"root dst", map[string]string{"a": "x"}, func(src string) Deploy { return Deploy{Src: src, Dst: "/"} }, "root directory"},
		{"top-level dst", map[string]string{"a": "x"}, func(src string) Deploy { return Deploy{Src: src, Dst: "/etc/"} }, "top-level"},
		{"file into root", map[string]string{"a": "x"}, func(src string) Deploy { return Deploy{Src: filepath.Join(src, "a"), Dst: "/"} }, "top-level"},
		{"dotdot dst", map[string]string{"a": "x"}, func(src string) Deploy { return Deploy{Src: src, Dst: "/opt/../etc/x"} }, `".."`},
		{"bad exclude", map[string]string{"a": "x"}, func(src string) Deploy { return Deploy{Src: src, Dst: "/opt/a", Exclude: []string{"[x"}} }, "exclude pattern"},
		{"bad owner", map[string]string{"a": "x"}, func(src string) Deploy { return Deploy{Src: src, Dst: "/opt/a", Owner: "a:b:c"} }, "owner"},
		{"template without facts", map[string]string{"a": "x"}, func(src string) Deploy { return Deploy{Src: src, Dst: "/opt/a", Template: true} }, "facts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := writeTree(t, tc.files)
			d := Deploy{Src: src, Dst: "/opt/a"}
			if tc.d != nil {
				d = tc.d(src)
			}
			_, err := planDeploy(d, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error with %q", err, tc.want)
			}
		})
	}
}

func TestPlanTemplate(t *testing.T) {
	src := writeTree(t, map[string]string{"mynet.conf": "peer = {{ ip \"b\" }}\nme = {{ .Host.Name }}\n"})
	f := testFacts()
	p, err := planDeploy(Deploy{Src: src, Dst: "/etc/mynet", Template: true}, &f)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.entries[0].data); got != "peer = 10.1.0.2\nme = a\n" {
		t.Fatalf("rendered %q", got)
	}
	os.WriteFile(filepath.Join(src, "mynet.conf"), []byte("{{ .Host.Nmae }}"), 0o644)
	if _, err := planDeploy(Deploy{Src: src, Dst: "/etc/mynet", Template: true}, &f); err == nil || !strings.Contains(err.Error(), "mynet.conf") {
		t.Fatalf("template error should name the file: %v", err)
	}
}

func TestParseSums(t *testing.T) {
	out := strings.Join([]string{
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  /opt/a/plain",
		`\e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b856  /opt/a/new\nline`,
		`\e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b857  /opt/a/back\\slash`,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b858 */opt/a/binary mode",
		"sha256sum: /opt/a/gone: No such file or directory",
		"",
	}, "\n")
	got := parseSums(out)
	want := map[string]string{
		"/opt/a/plain":       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"/opt/a/new\nline":   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b856",
		`/opt/a/back\slash`:  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b857",
		"/opt/a/binary mode": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b858",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q: got %q", k, got[k])
		}
	}
}

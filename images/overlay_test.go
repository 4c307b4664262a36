package images

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateOverlay(t *testing.T) {
	needQemuImg(t)
	ctx := context.Background()
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", base, "64M")

	// Overlays record the base by absolute path even when given a relative one.
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, base)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		size int64
		want int64
	}{
		{"same size", 0, 64 << 20},
		{"larger", 1 << 30, 1 << 30},
		{"equal", 64 << 20, 64 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".qcow2")
			if err := CreateOverlay(ctx, rel, dst, tc.size); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("qemu-img", "info", "--output=json", dst).Output()
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				Format          string `json:"format"`
				VirtualSize     int64  `json:"virtual-size"`
				BackingFilename string `json:"backing-filename"`
				BackingFormat   string `json:"backing-filename-format"`
			}
			if err := json.Unmarshal(out, &info); err != nil {
				t.Fatal(err)
			}
			if info.Format != "qcow2" || info.VirtualSize != tc.want || info.BackingFilename != base || info.BackingFormat != "qcow2" {
				t.Errorf("overlay %+v, want qcow2 of %d backed by %s (qcow2)", info, tc.want, base)
			}
		})
	}
	t.Run("smaller than base", func(t *testing.T) {
		dst := filepath.Join(dir, "small.qcow2")
		err := CreateOverlay(ctx, base, dst, 32<<20)
		if err == nil || !strings.Contains(err.Error(), "smaller") {
			t.Fatalf("error %v", err)
		}
		if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("file left behind")
		}
	})
	t.Run("existing destination", func(t *testing.T) {
		if err := CreateOverlay(ctx, base, filepath.Join(dir, "larger.qcow2"), 0); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("error %v, want fs.ErrExist", err)
		}
	})
	t.Run("missing base", func(t *testing.T) {
		if err := CreateOverlay(ctx, filepath.Join(dir, "nope.qcow2"), filepath.Join(dir, "x.qcow2"), 0); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("raw base", func(t *testing.T) {
		raw, _ := rawFile(t, t.TempDir(), 1<<20)
		dst := filepath.Join(dir, "on-raw.qcow2")
		if err := CreateOverlay(ctx, raw, dst, 0); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command("qemu-img", "info", dst).CombinedOutput()
		if !strings.Contains(string(out), "backing file format: raw") {
			t.Errorf("qemu-img info:\n%s", out)
		}
	})
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestAptSources(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "sources.list")
	os.WriteFile(list, []byte(`# comment
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib # trailing
deb http://other.example/debian bookworm-updates main
`), 0o644)
	got := readAptSources(list)
	if len(got) != 2 || got[0] != (aptSource{"http://mirror.example/debian", "bookworm", true}) || got[1].suite != "bookworm-updates" {
		t.Errorf("list: %+v", got)
	}
	sources := filepath.Join(dir, "debian.sources")
	os.WriteFile(sources, []byte(`Types: deb
# a comment
URIs: http://deb.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main
`), 0o644)
	got = readAptSources(sources)
	if len(got) != 2 || got[0] != (aptSource{"http://deb.example/debian", "bookworm", true}) {
		t.Errorf("sources: %+v", got)
	}
	t.Setenv("FORGELAB_DEBIAN_MIRROR", "http://override.example/debian")
	if m, from := debianMirror(); m != "http://override.example/debian" || from != "FORGELAB_DEBIAN_MIRROR" {
		t.Errorf("override: %s %s", m, from)
	}
}

func TestTreeNeverLeavesRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.Symlink(outside, filepath.Join(root, "escape"))
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o644)
	os.Symlink(filepath.Join(outside, "victim"), filepath.Join(root, "etc", "resolv.conf"))

	tr := tree{root}
	if err := tr.write("escape/victim", "x", 0o644); err == nil {
		t.Errorf("wrote through an absolute symlink")
	}
	if err := tr.write("etc/resolv.conf", "", 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "keep" {
		t.Errorf("file outside the tree changed: %q", b)
	}
	if err := tr.write("lib/x.conf", "y", 0o600); err != nil {
		t.Errorf("relative symlink parent refused: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(root, "usr/lib/x.conf")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lib/x.conf: %v %v", fi, err)
	}
	if err := tr.write("../x", "y", 0o644); err == nil {
		t.Errorf("wrote outside the tree")
	}
}

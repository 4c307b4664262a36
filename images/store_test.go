package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needQemuImg skips without qemu-img, except in CI where it is a failure.
func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("qemu-img not installed (apt-get install qemu-utils)")
		}
		t.Skip("qemu-img not installed (apt-get install qemu-utils)")
	}
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

// rawFile writes a raw disk image of size bytes with some content.
func rawFile(t *testing.T, dir string, size int) (string, string) {
	t.Helper()
	b := make([]byte, size)
	copy(b[510:], []byte{0x55, 0xaa})
	copy(b[4096:], "forgelab test disk")
	p := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

// noLeftovers checks that only images, metadata, logs and locks remain.
func noLeftovers(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".import-") || strings.HasPrefix(n, ".build-") || strings.Contains(n, ".tmp-") {
			t.Errorf("leftover %s in the store", n)
		}
	}
}

func TestImport(t *testing.T) {
	needQemuImg(t)
	ctx := context.Background()
	src := t.TempDir()
	s := NewStore(filepath.Join(t.TempDir(), "images"))
	raw, rawSum := rawFile(t, src, 4<<20)
	q := filepath.Join(src, "disk.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", q, "8M")

	t.Run("raw with checksum", func(t *testing.T) {
		if err := s.Import(ctx, "from-raw", raw, "SHA256:"+strings.ToUpper(rawSum)); err != nil {
			t.Fatal(err)
		}
		img, err := s.Get("from-raw")
		if err != nil {
			t.Fatal(err)
		}
		if img.Format != "qcow2" || img.VirtualSize != 4<<20 || img.Path != s.Path("from-raw") || img.FileSize <= 0 {
			t.Errorf("image %+v", img)
		}
		if !strings.Contains(img.Source, raw) || !strings.Contains(img.Source, "raw") || !strings.Contains(img.Source, rawSum) {
			t.Errorf("source %q", img.Source)
		}
		if sum, _ := fileSHA256(img.Path); sum != img.SHA256 {
			t.Errorf("sha256 %s, file has %s", img.SHA256, sum)
		}
		info, err := qemuImgInfo(ctx, img.Path)
		if err != nil || info.Format != "qcow2" {
			t.Errorf("stored file: %+v %v", info, err)
		}
	})
	t.Run("qcow2 without checksum", func(t *testing.T) {
		if err := s.Import(ctx, "from-qcow2", q, ""); err != nil {
			t.Fatal(err)
		}
		img, err := s.Get("from-qcow2")
		if err != nil || img.VirtualSize != 8<<20 || img.Format != "qcow2" {
			t.Errorf("image %+v, %v", img, err)
		}
		want, _ := fileSHA256(q)
		if img.SHA256 != want {
			t.Errorf("qcow2 is stored as is: sha256 %s, source has %s", img.SHA256, want)
		}
	})
	t.Run("wrong checksum", func(t *testing.T) {
		err := s.Import(ctx, "bad-sum", raw, strings.Repeat("0", 64))
		if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Fatalf("error %v", err)
		}
		if s.Has("bad-sum") {
			t.Errorf("image exists after a failed import")
		}
	})
	t.Run("malformed checksum", func(t *testing.T) {
		if err := s.Import(ctx, "bad-sum", raw, "md5:abc"); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("missing file", func(t *testing.T) {
		err := s.Import(ctx, "missing", filepath.Join(src, "nope.raw"), "")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("existing name", func(t *testing.T) {
		err := s.Import(ctx, "from-raw", q, "")
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("error %v, want fs.ErrExist", err)
		}
	})
	t.Run("qcow2 with a backing file", func(t *testing.T) {
		ov := filepath.Join(src, "overlay.qcow2")
		qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", q, ov)
		err := s.Import(ctx, "overlay", ov, "")
		if err == nil || !strings.Contains(err.Error(), "backing file") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("qcow2 with an external data file", func(t *testing.T) {
		df := filepath.Join(src, "df.qcow2")
		qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(src, "df.data"), df, "4M")
		err := s.Import(ctx, "datafile", df, "")
		if err == nil || !strings.Contains(err.Error(), "another file") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("other format", func(t *testing.T) {
		vdi := filepath.Join(src, "disk.vdi")
		qemuImg(t, "create", "-q", "-f", "vdi", vdi, "4M")
		if err := s.Import(ctx, "vdi", vdi, ""); err == nil || !strings.Contains(err.Error(), "vdi") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("bad name", func(t *testing.T) {
		for _, n := range []string{"", "../x", "a/b", ".hidden", "x.qcow2", strings.Repeat("a", 65)} {
			if err := s.Import(ctx, n, raw, ""); err == nil {
				t.Errorf("name %q accepted", n)
			}
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Import(cctx, "cancelled", raw, ""); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
		if s.Has("cancelled") {
			t.Errorf("image exists")
		}
	})
	noLeftovers(t, s.Dir)
}

func TestStoreListRemove(t *testing.T) {
	needQemuImg(t)
	ctx := context.Background()
	src := t.TempDir()
	s := NewStore(filepath.Join(t.TempDir(), "images"))

	if imgs, err := s.List(); err != nil || len(imgs) != 0 {
		t.Fatalf("empty store lists %v, %v", imgs, err)
	}
	raw, _ := rawFile(t, src, 1<<20)
	for _, n := range []string{"zeta", "alpha", "mid-1.0"} {
		if err := s.Import(ctx, n, raw, ""); err != nil {
			t.Fatal(err)
		}
	}
	// A qcow2 dropped in by hand is listed too, described by qemu-img.
	qemuImg(t, "create", "-q", "-f", "qcow2", s.Path("byhand"), "2M")
	// Other files are not images.
	os.WriteFile(filepath.Join(s.Dir, "notes.txt"), []byte("x"), 0o644)

	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range imgs {
		names = append(names, i.Name)
	}
	if strings.Join(names, ",") != "alpha,byhand,mid-1.0,zeta" {
		t.Errorf("list %v", names)
	}
	if imgs[1].Source != "unknown (no metadata)" || imgs[1].VirtualSize != 2<<20 {
		t.Errorf("hand-made image %+v", imgs[1])
	}

	if err := s.Remove("mid-1.0"); err != nil {
		t.Fatal(err)
	}
	if s.Has("mid-1.0") {
		t.Errorf("still there")
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "mid-1.0.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("metadata left: %v", err)
	}
	if err := s.Remove("mid-1.0"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second remove: %v", err)
	}
	if _, err := s.Get("mid-1.0"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("get removed: %v", err)
	}
	if imgs, _ := s.List(); len(imgs) != 3 {
		t.Errorf("after remove: %d images", len(imgs))
	}
}

func TestBuildUnknownRecipe(t *testing.T) {
	err := NewStore(t.TempDir()).Build(context.Background(), "plan9", nil)
	if err == nil || !strings.Contains(err.Error(), "debian-12") {
		t.Fatalf("error %v, want one listing the recipes", err)
	}
	if got := Recipes(); len(got) != 2 || got[0] != "debian-12" || got[1] != "debian-12-cloud-init" {
		t.Errorf("recipes %v", got)
	}
}

func TestBuildRefusesExisting(t *testing.T) {
	needQemuImg(t)
	s := NewStore(t.TempDir())
	qemuImg(t, "create", "-q", "-f", "qcow2", s.Path("debian-12"), "1M")
	if err := s.Build(context.Background(), "debian-12", nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("error %v, want fs.ErrExist", err)
	}
}

func TestLockExcludes(t *testing.T) {
	s := NewStore(t.TempDir())
	unlock, err := s.lock("x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.lock("x"); err == nil {
		t.Errorf("second lock on the same name succeeded")
	}
	unlock()
	unlock2, err := s.lock("x")
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
}

func TestRemoveTreeRefusesMounts(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tree", "a"), 0o755)
	if err := removeTree(filepath.Join(dir, "tree")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tree")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("not removed")
	}
	if mps, err := mountsUnder("/"); err != nil || len(mps) == 0 {
		t.Errorf("mountsUnder(/) = %v, %v", mps, err)
	}
	if got := unescapeMountinfo(`/a\040b`); got != "/a b" {
		t.Errorf("unescape: %q", got)
	}
}

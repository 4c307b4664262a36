package runs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree maps each file of a folder to its content and mode.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		if d.IsDir() {
			out[rel+"/"] = info.Mode().Perm().String()
			return nil
		}
		data, err := os.ReadFile(p)
		out[rel] = info.Mode().Perm().String() + " " + string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExportImport(t *testing.T) {
	f := writeFixture(t, t.TempDir())
	var buf bytes.Buffer
	if err := Export(f.dir, &buf); err != nil {
		t.Fatal(err)
	}
	root2 := t.TempDir()
	dir, err := Import(root2, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != filepath.Base(f.dir) || filepath.Base(filepath.Dir(dir)) != "handover" {
		t.Errorf("imported to %s", dir)
	}
	want, got := tree(t, f.dir), tree(t, dir)
	if len(got) != len(want) {
		t.Errorf("imported %d entries, exported %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s differs after export and import:\n got %.80q\nwant %.80q", k, got[k], v)
		}
	}
	r, err := Open(dir)
	if err != nil || r.Meta.Status != StatusComplete {
		t.Fatalf("imported run: %v, %v", r, err)
	}
	if _, err := r.Series(`forgelab_link_loss_ratio{link=ab,from=a}`); err != nil {
		t.Error(err)
	}
	// A second import of the same run is refused, not merged.
	if _, err := Import(root2, bytes.NewReader(buf.Bytes())); err == nil || !strings.Contains(err.Error(), "already there") {
		t.Errorf("second import: %v", err)
	}
}

// archive builds a .tar.gz from entries; a "/" suffix makes a folder, a
// "->" a symlink.
func archive(t *testing.T, entries ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		name, body, _ := strings.Cut(e, "=")
		h := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o700
		}
		if target, ok := strings.CutPrefix(body, "->"); ok {
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, target, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestImportRefuses(t *testing.T) {
	meta := `{"format":1,"lab":"l","id":"20261201T000000Z-0000","status":"complete"}`
	tests := []struct {
		name string
		data []byte
		err  string
	}{
		{"not gzip", []byte("plain text"), "not a .tar.gz archive"},
		{"empty", archive(t), "archive is empty"},
		{"climbs out", archive(t, "../x/run.json="+meta), `".." cannot be part of a path`},
		{"climbs out inside", archive(t, "l/20261201T000000Z-0000/../../../etc/passwd=x"), `".." cannot be part of a path`},
		{"absolute", archive(t, "/etc/l/id/run.json=x"), "not inside a LAB/ID folder"},
		{"bare file", archive(t, "run.json="+meta), "not inside a LAB/ID folder"},
		{"symlink", archive(t, "l/20261201T000000Z-0000/run.json=->/etc/passwd"), "not a plain file or folder"},
		{"two runs", archive(t, "l/20261201T000000Z-0000/run.json="+meta, "l/20261201T000000Z-0001/run.json="+meta), "more than one run"},
		{"no run.json", archive(t, "l/20261201T000000Z-0000/links.csv=time,t\n"), "no such run"},
		{"renamed folder", archive(t, "l/20261201T000000Z-9999/run.json="+meta), "was it renamed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			_, err := Import(root, bytes.NewReader(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
			// Nothing is left behind, not even a temporary folder.
			list, _ := List(root, "")
			var left []string
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					left = append(left, p)
				}
				if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), ".import-") {
					left = append(left, p)
				}
				return nil
			})
			if len(list) > 0 || len(left) > 0 {
				t.Errorf("left behind: %v %v", list, left)
			}
		})
	}
}

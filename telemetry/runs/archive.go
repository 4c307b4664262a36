package runs

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Export writes the run in dir to w as one .tar.gz archive whose entries
// are LAB/ID/<file>, so it unpacks (with tar or Import) into a runs root
// as it was. A run still recording is refused: its files are not final.
func Export(dir string, w io.Writer) error {
	m, err := readMeta(dir)
	if err != nil {
		return fmt.Errorf("export run: %w", err)
	}
	if m.Status == StatusRunning {
		return fmt.Errorf("export run %s/%s: it is still recording (pid %d): export it when it has ended", m.Lab, m.ID, m.Recorder.PID)
	}
	prefix := m.Lab + "/" + m.ID
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := prefix
		if rel != "." {
			name = path.Join(prefix, filepath.ToSlash(rel))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(dirMode), ModTime: info.ModTime()})
		case !d.Type().IsRegular():
			return nil // a run folder holds only files; skip anything else
		case strings.HasSuffix(d.Name(), ".tmp"):
			return nil // a run.json being replaced
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(fileMode), Size: info.Size(), ModTime: info.ModTime()}); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		// A file that grew since the header (it cannot here: the run has
		// ended) would corrupt the archive, so copy exactly Size bytes.
		_, err = io.CopyN(tw, f, info.Size())
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		return fmt.Errorf("export run %s: %w", prefix, err)
	}
	return nil
}

// ExportFile writes the archive of the run in dir to the file out (mode
// 0600); a failed export leaves no half archive behind.
func ExportFile(dir, out string) error {
	return writeAtomic(out, ".part", func(w io.Writer) error { return Export(dir, w) })
}

// maxImportBytes bounds what Import unpacks, so a hostile archive cannot
// fill the disk.
const maxImportBytes = 64 << 30

// Import unpacks an archive made by Export into root, as root/LAB/ID, and
// returns that folder. Every entry must lie inside one LAB/ID folder;
// links, devices and paths that climb out are refused. An existing run
// with the same id is not overwritten.
func Import(root string, r io.Reader) (string, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return "", fmt.Errorf("import run: not a .tar.gz archive: %w (make one with forgelab runs export)", err)
	}
	tr := tar.NewReader(gz)
	var lab, id, tmp string
	cleanup := func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cleanup()
			return "", fmt.Errorf("import run: damaged archive: %w", err)
		}
		l, i, rel, err := splitEntry(h.Name)
		if err != nil {
			cleanup()
			return "", fmt.Errorf("import run: %w", err)
		}
		if tmp == "" {
			lab, id = l, i
			if err := os.MkdirAll(filepath.Join(root, lab), dirMode); err != nil {
				return "", fmt.Errorf("import run: %w", err)
			}
			if _, err := os.Stat(filepath.Join(root, lab, id)); err == nil {
				return "", fmt.Errorf("import run %s/%s: a run with that id is already there (forgelab runs rm %s/%s first, if it is to be replaced)", lab, id, lab, id)
			}
			if tmp, err = os.MkdirTemp(filepath.Join(root, lab), ".import-"); err != nil {
				return "", fmt.Errorf("import run: %w", err)
			}
		} else if l != lab || i != id {
			cleanup()
			return "", fmt.Errorf("import run: the archive holds more than one run (%s/%s and %s/%s): import one export at a time", lab, id, l, i)
		}
		dst := filepath.Join(tmp, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, dirMode)
		case tar.TypeReg:
			total += h.Size
			if total > maxImportBytes {
				err = fmt.Errorf("archive unpacks to more than %d GiB", maxImportBytes>>30)
				break
			}
			err = writeEntry(dst, tr, h.Size)
		default:
			err = fmt.Errorf("entry %s is not a plain file or folder (a run holds only those)", h.Name)
		}
		if err != nil {
			cleanup()
			return "", fmt.Errorf("import run: %w", err)
		}
	}
	if tmp == "" {
		return "", errors.New("import run: the archive is empty (make one with forgelab runs export)")
	}
	m, err := readMeta(tmp)
	if err != nil {
		cleanup()
		return "", fmt.Errorf("import run: %w", err)
	}
	if m.Lab != lab || m.ID != id {
		cleanup()
		return "", fmt.Errorf("import run: the archive's folder %s/%s holds run %s/%s: was it renamed? rename the folder back", lab, id, m.Lab, m.ID)
	}
	dir := filepath.Join(root, lab, id)
	if err := os.Rename(tmp, dir); err != nil {
		cleanup()
		return "", fmt.Errorf("import run: %w", err)
	}
	return dir, nil
}

// splitEntry checks an archive entry name LAB/ID[/rel] and splits it.
func splitEntry(name string) (lab, id, rel string, err error) {
	clean := strings.TrimSuffix(name, "/")
	parts := strings.Split(clean, "/")
	if len(parts) < 2 || path.IsAbs(name) {
		return "", "", "", fmt.Errorf("entry %q is not inside a LAB/ID folder (make archives with forgelab runs export)", name)
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || !validName(p) {
			return "", "", "", fmt.Errorf("entry %q: %q cannot be part of a path in a run folder", name, p)
		}
	}
	return parts[0], parts[1], path.Join(parts[2:]...), nil
}

func writeEntry(dst string, r io.Reader, size int64) error {
	if err := os.MkdirAll(filepath.Dir(dst), dirMode); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fileMode)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, r, size)
	return errors.Join(err, f.Close())
}

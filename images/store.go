// Package images keeps forgelab's guest images: a store of qcow2 base images
// (built from Debian packages or imported), qcow2 overlays for VM disks, and
// cloud-init NoCloud seed ISOs.
//
// Layout of a store directory (normally <state-dir>/images):
//
//	<name>.qcow2          the image
//	<name>.json           its metadata (Image)
//	logs/build-<name>.log the last build's tool output
//	cache/debs/           .debs kept between builds
//	.<name>.lock          held while the image is built, imported or removed
//	.build-*, .import-*   work in progress; removed on failure
package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Store is a directory of images.
type Store struct {
	Dir string
	// GuestInit is the static forgelab-guestinit program that the debian-12
	// recipe puts into the image. Empty: $FORGELAB_GUESTINIT, else
	// forgelab-guestinit next to the running program.
	GuestInit string
}

// NewStore returns the store kept in dir (created on first write).
func NewStore(dir string) *Store { return &Store{Dir: dir} }

// Image describes one stored image.
type Image struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Format string `json:"format"` // always "qcow2" for stored images
	SHA256 string `json:"sha256"` // of the stored qcow2 file
	Source string `json:"source"` // "recipe debian-12 (...)" or "import /path/file.raw (raw, sha256 ...)"
	// Recipe is "NAME/VERSION" of the recipe that built it; empty for imports.
	Recipe string `json:"recipe,omitempty"`
	// Boot, for images forgelab built: the image's own kernel and initramfs
	// kept next to it, so VMs start them directly. Under emulation that
	// skips about 4 CPU-seconds of BIOS disk reads and GRUB per boot; the
	// disk keeps GRUB for use elsewhere. Nil: boot from the disk.
	Boot *DirectBoot `json:"boot,omitempty"`
	// VirtualSize is the disk size the guest sees; FileSize what the file takes.
	VirtualSize int64     `json:"virtual_size"`
	FileSize    int64     `json:"file_size"`
	Created     time.Time `json:"created"`
}

// DirectBoot is a kernel, initramfs and command line to start a VM with.
type DirectBoot struct {
	Kernel  string `json:"kernel"` // absolute path (the metadata stores the base name)
	Initrd  string `json:"initrd"`
	Cmdline string `json:"cmdline"`
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

func checkName(name string) error {
	if !nameRE.MatchString(name) || strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".qcow2") {
		return fmt.Errorf("image name %q: use 1-64 letters, digits, '.', '_', '-', starting with a letter or digit", name)
	}
	return nil
}

// Path is where image name lives (whether or not it exists).
func (s *Store) Path(name string) string { return filepath.Join(s.Dir, name+".qcow2") }

func (s *Store) metaPath(name string) string   { return filepath.Join(s.Dir, name+".json") }
func (s *Store) kernelPath(name string) string { return filepath.Join(s.Dir, name+".vmlinuz") }
func (s *Store) initrdPath(name string) string { return filepath.Join(s.Dir, name+".initrd") }

// Has reports whether image name exists.
func (s *Store) Has(name string) bool {
	if checkName(name) != nil {
		return false
	}
	fi, err := os.Stat(s.Path(name))
	return err == nil && fi.Mode().IsRegular()
}

// Get returns the metadata of image name. A missing image is an error that
// wraps fs.ErrNotExist.
func (s *Store) Get(name string) (Image, error) {
	if err := checkName(name); err != nil {
		return Image{}, err
	}
	fi, err := os.Stat(s.Path(name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Image{}, fmt.Errorf("image %s: %w (build it with `forgelab image build %s` if it is a recipe (%s), or import one)",
				name, fs.ErrNotExist, name, strings.Join(Recipes(), ", "))
		}
		return Image{}, fmt.Errorf("image %s: %w", name, err)
	}
	var img Image
	b, err := os.ReadFile(s.metaPath(name))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &img); err != nil {
			return Image{}, fmt.Errorf("image %s: metadata %s: %w", name, s.metaPath(name), err)
		}
	case errors.Is(err, fs.ErrNotExist):
		// A qcow2 put here by hand: describe what qemu-img sees.
		info, ierr := qemuImgInfo(context.Background(), s.Path(name))
		if ierr != nil {
			return Image{}, fmt.Errorf("image %s: %w", name, ierr)
		}
		img = Image{Format: info.Format, VirtualSize: info.VirtualSize, Source: "unknown (no metadata)", Created: fi.ModTime()}
	default:
		return Image{}, fmt.Errorf("image %s: %w", name, err)
	}
	img.Name = name
	img.Path = s.Path(name)
	img.FileSize = fi.Size()
	if img.Boot != nil {
		img.Boot.Kernel = filepath.Join(s.Dir, filepath.Base(img.Boot.Kernel))
		img.Boot.Initrd = filepath.Join(s.Dir, filepath.Base(img.Boot.Initrd))
	}
	return img, nil
}

// Stale reports whether image name was built by an older version of its
// recipe (so it lacks what the current recipe makes, such as a faster
// boot). Imported images are never stale.
func (s *Store) Stale(name string) bool {
	r, ok := recipes[name]
	if !ok {
		return false
	}
	img, err := s.Get(name)
	if err != nil || !strings.HasPrefix(img.Source, "recipe ") {
		return false
	}
	return img.Recipe != recipeID(name, r)
}

func recipeID(name string, r recipe) string { return fmt.Sprintf("%s/%d", name, r.version) }

// List returns every image in the store, sorted by name.
func (s *Store) List() ([]Image, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var out []Image
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".qcow2")
		if !ok || !e.Type().IsRegular() || checkName(name) != nil {
			continue
		}
		img, err := s.Get(name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			return nil, err
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes image name and its metadata. The caller checks that no lab
// uses it (overlays name it as their backing file). A missing image is an
// error that wraps fs.ErrNotExist.
func (s *Store) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	unlock, err := s.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(s.Path(name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove image %s: %w", name, fs.ErrNotExist)
		}
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	for _, p := range []string{s.metaPath(name), s.kernelPath(name), s.initrdPath(name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove image %s: %w", name, err)
		}
	}
	return nil
}

// lock takes the per-name lock (an flock on .<name>.lock), so two processes
// never build, import or remove the same name at once. It fails at once
// rather than waiting when someone else holds it.
func (s *Store) lock(name string) (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	p := filepath.Join(s.Dir, "."+name+".lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("image %s is being built, imported or removed by another forgelab process (lock %s)", name, p)
		}
		return nil, fmt.Errorf("image store: lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}

// install moves a finished qcow2 (in the store directory) into place under
// name and writes its metadata. The metadata goes first, so an image file
// never exists without it.
func (s *Store) install(name string, b built, recipeID string) error {
	tmpQcow2, source := b.qcow2, b.source
	info, err := qemuImgInfo(context.Background(), tmpQcow2)
	if err != nil {
		return err
	}
	sum, err := fileSHA256(tmpQcow2)
	if err != nil {
		return err
	}
	fi, err := os.Stat(tmpQcow2)
	if err != nil {
		return err
	}
	img := Image{
		Name: name, Path: s.Path(name), Format: info.Format, SHA256: sum, Source: source, Recipe: recipeID,
		VirtualSize: info.VirtualSize, FileSize: fi.Size(), Created: time.Now().UTC().Truncate(time.Second),
	}
	if b.kernel != "" {
		// Kernel and initramfs go in place first: the image file appears
		// last, so an image never exists without what its metadata names.
		for _, f := range []struct{ from, to string }{{b.kernel, s.kernelPath(name)}, {b.initrd, s.initrdPath(name)}} {
			if err := os.Chmod(f.from, 0o644); err != nil {
				return err
			}
			if err := os.Rename(f.from, f.to); err != nil {
				return err
			}
		}
		img.Boot = &DirectBoot{Kernel: filepath.Base(s.kernelPath(name)), Initrd: filepath.Base(s.initrdPath(name)), Cmdline: b.cmdline}
	}
	meta, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.metaPath(name), append(meta, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmpQcow2, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmpQcow2, s.Path(name)); err != nil {
		os.Remove(s.metaPath(name))
		return err
	}
	return nil
}

// Import adds the disk image file src as name. src may be qcow2 (kept as it
// is) or raw (converted to qcow2). When wantSHA256 is given (hex, optionally
// prefixed "sha256:"), the file must match it. qemu-img must accept the
// result; qcow2 files with a backing file are refused. An existing name is
// an error that wraps fs.ErrExist.
func (s *Store) Import(ctx context.Context, name, src, wantSHA256 string) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	want, err := parseSHA256(wantSHA256)
	if err != nil {
		return err
	}
	if s.Has(name) {
		return fmt.Errorf("import %s: image %w (remove it first)", name, fs.ErrExist)
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	in, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("import %s: %s is not a regular file", name, abs)
	}

	unlock, err := s.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	if s.Has(name) {
		return fmt.Errorf("import %s: image %w (remove it first)", name, fs.ErrExist)
	}

	work, err := os.MkdirTemp(s.Dir, ".import-"+name+"-")
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	defer os.RemoveAll(work)

	// Copy while hashing, so the checked bytes are the stored bytes.
	copyPath := filepath.Join(work, "src")
	out, err := os.OpenFile(copyPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), ctxReader{ctx, in})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("import %s: copy %s: %w", name, abs, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return fmt.Errorf("import %s: checksum mismatch for %s: sha256 is %s, want %s", name, abs, got, want)
	}

	info, err := qemuImgInfo(ctx, copyPath)
	if err != nil {
		return fmt.Errorf("import %s: %s is not a disk image qemu-img can read: %w", name, abs, err)
	}
	final := copyPath
	switch info.Format {
	case "qcow2":
		if info.BackingFilename != "" {
			return fmt.Errorf("import %s: %s has a backing file (%s); import a standalone image (qemu-img convert -O qcow2 it first)", name, abs, info.BackingFilename)
		}
		if info.FormatSpecific.Data.DataFile != "" {
			return fmt.Errorf("import %s: %s keeps its data in another file (%s); import a standalone image (qemu-img convert -O qcow2 it first)", name, abs, info.FormatSpecific.Data.DataFile)
		}
		if out, err := runOut(ctx, "qemu-img", "check", "-q", "-f", "qcow2", copyPath); err != nil {
			return fmt.Errorf("import %s: qemu-img check %s: %w: %s", name, abs, err, strings.TrimSpace(out))
		}
	case "raw":
		final = filepath.Join(work, "converted.qcow2")
		if out, err := runOut(ctx, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", copyPath, final); err != nil {
			return fmt.Errorf("import %s: convert raw to qcow2: %w: %s", name, err, strings.TrimSpace(out))
		}
	default:
		return fmt.Errorf("import %s: %s is %s; import qcow2 or raw (qemu-img convert -O qcow2 it first)", name, abs, info.Format)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	if err := s.install(name, built{qcow2: final, source: fmt.Sprintf("import %s (%s, sha256 %s)", abs, info.Format, got)}, ""); err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	return nil
}

func parseSHA256(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "sha256:")
	if s == "" {
		return "", nil
	}
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("checksum %q: want 64 hex digits of a SHA-256", s)
	}
	return s, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ctxReader stops a copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

package images

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// built is what a recipe made: the qcow2, its Source line, and optionally
// the kernel and initramfs for direct kernel boot (files inside work).
type built struct {
	qcow2, source           string
	kernel, initrd, cmdline string
}

// recipe builds one image in a work directory inside the store.
type recipe struct {
	// tools the build runs, with the Debian package that has each.
	tools    map[string]string
	needRoot bool
	// version is recorded with the image; an image of an older version is
	// stale (Store.Stale).
	version int
	// build returns what it made inside work.
	build func(b *builder, work string, s *Store) (built, error)
}

var recipes = map[string]recipe{
	"debian-12":            debian12Recipe,
	"debian-12-cloud-init": debian12CloudInitRecipe,
}

// Recipes returns the names Build knows, sorted.
func Recipes() []string {
	names := make([]string, 0, len(recipes))
	for n := range recipes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Build makes image name from its recipe. Progress lines ("debootstrap: ...",
// "partitioning", ...) go to progress (nil: discarded); the tools' output
// goes to logs/build-<name>.log in the store, whose tail is part of the error
// when the build fails. The work happens in a temporary directory inside the
// store that is removed on every path, cancellation included, and the image
// appears only when complete. An existing image is an error that wraps
// fs.ErrExist: remove it first to rebuild (the .deb cache makes that quick).
func (s *Store) Build(ctx context.Context, name string, progress io.Writer) (err error) {
	r, ok := recipes[name]
	if !ok {
		return fmt.Errorf("no recipe for image %q: recipes are %s (anything else: import it)", name, strings.Join(Recipes(), ", "))
	}
	if progress == nil {
		progress = io.Discard
	}
	if s.Has(name) {
		return fmt.Errorf("build %s: image %w (remove it first to rebuild)", name, fs.ErrExist)
	}
	if miss := missingTools(r.tools); len(miss) > 0 {
		return fmt.Errorf("build %s: missing tools: %s", name, strings.Join(miss, ", "))
	}
	if r.needRoot && os.Geteuid() != 0 {
		return fmt.Errorf("build %s: %w (debootstrap and chroot): run it as root, or import an image instead", name, errNotRoot)
	}
	for _, d := range []string{s.Dir, filepath.Join(s.Dir, "logs"), filepath.Join(s.Dir, "cache")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("build %s: %w", name, err)
		}
	}
	unlock, err := s.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	if s.Has(name) {
		return fmt.Errorf("build %s: image %w (remove it first to rebuild)", name, fs.ErrExist)
	}

	logPath := filepath.Join(s.Dir, "logs", "build-"+name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	defer logf.Close()
	work, err := os.MkdirTemp(s.Dir, ".build-"+name+"-")
	if err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	b := &builder{ctx: ctx, progress: progress, log: logf, logPath: logPath}
	defer func() {
		// Runs on cancellation too: it needs no context.
		if rerr := removeTree(work); rerr != nil {
			err = errors.Join(err, fmt.Errorf("build %s: cleanup: %w", name, rerr))
		}
	}()

	start := time.Now()
	out, err := r.build(b, work, s)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		b.step("installing as %s", s.Path(name))
		err = s.install(name, out, recipeID(name, r))
	}
	if err != nil {
		fmt.Fprintf(logf, "\nFAILED: %v\n", err)
		logf.Sync()
		if ctx.Err() != nil {
			return fmt.Errorf("build %s: %w", name, err)
		}
		return fmt.Errorf("build %s: %w\nlast lines of %s:\n%s", name, err, logPath, logTail(logPath, 25))
	}
	b.step("built %s in %s", name, time.Since(start).Round(time.Second))
	return nil
}

// guestInitBinary finds the static forgelab-guestinit program for the image.
func (s *Store) guestInitBinary() (string, error) {
	p, from := s.GuestInit, "the store's GuestInit"
	if p == "" {
		p, from = os.Getenv("FORGELAB_GUESTINIT"), "FORGELAB_GUESTINIT"
	}
	if p == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		p, from = filepath.Join(filepath.Dir(exe), "forgelab-guestinit"), "next to "+exe
	}
	const fix = "build it with `make build` (CGO_ENABLED=0 go build -o bin/forgelab-guestinit ./images/guestinit/forgelab-guestinit), keep it next to forgelab or set FORGELAB_GUESTINIT"
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("forgelab-guestinit (%s, %s): %w: %s", p, from, err, fix)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("forgelab-guestinit %s is dynamically linked, so it may not run in the guest: %s", p, fix)
		}
	}
	return p, nil
}

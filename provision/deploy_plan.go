package provision

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Deploy copies a local file or tree to a host.
//
// A directory Src is copied into Dst (Src's contents become Dst's
// contents, like rsync's "src/ dst"). A file Src is written to Dst, or into
// Dst when Dst ends in "/". Files keep their local mode unless Mode is set;
// symlinks inside the tree are recreated as symlinks; a symlink that points
// outside Src is refused, as is any Dst that is not a directory of its own.
type Deploy struct {
	Src      string       // local file or directory
	Dst      string       // absolute path on the host
	Mode     *os.FileMode // when set, every regular file gets this mode
	Owner    string       // "user" or "user:group" on the host; "" leaves the login user's
	Exclude  []string     // path.Match patterns, tried on the path relative to Src and on the base name
	Template bool         // render every file as a Go template over DeployOptions.Facts before sending
}

type entryKind int

const (
	kindDir entryKind = iota
	kindFile
	kindLink
)

func (k entryKind) String() string {
	return [...]string{"directory", "file", "symlink"}[k]
}

// entry is one thing a deploy writes.
type entry struct {
	kind   entryKind
	local  string      // local path
	remote string      // absolute remote path
	mode   os.FileMode // permission and setuid/setgid/sticky bits
	size   int64
	sum    string // hex sha256 of the content sent (files)
	link   string // symlink target (links)
	data   []byte // rendered template content; nil: read from local
}

// plan is everything one Deploy will write, checked without the host: a
// plan that exists has a valid Dst, sources that exist, no escaping path,
// and templates that rendered.
type plan struct {
	deploy   Deploy
	root     string      // remote directory holding every entry
	rootMode os.FileMode // for root when it must be created
	tree     bool        // Src is a directory
	entries  []entry     // directories first, parents before children, then files and links
}

// cleanDst checks a deploy destination and returns it cleaned.
func cleanDst(dst string) (string, error) {
	if dst == "" {
		return "", fmt.Errorf("dst is empty")
	}
	if !path.IsAbs(dst) {
		return "", fmt.Errorf("dst %q is not an absolute path", dst)
	}
	for _, el := range strings.Split(dst, "/") {
		if el == ".." {
			return "", fmt.Errorf("dst %q contains \"..\"", dst)
		}
	}
	c := path.Clean(dst)
	if c == "/" {
		return "", fmt.Errorf("dst %q is the root directory", dst)
	}
	top := "/" + strings.Split(c, "/")[1]
	switch top {
	case "/proc", "/sys", "/dev":
		return "", fmt.Errorf("dst %q is inside %s, a kernel filesystem", dst, top)
	}
	if c == top {
		return "", fmt.Errorf("dst %q is a top-level directory: deploy into a directory of its own, such as /opt/NAME", dst)
	}
	return c, nil
}

func excluded(patterns []string, rel string) bool {
	base := path.Base(rel)
	for _, p := range patterns {
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
		if ok, _ := path.Match(p, base); ok {
			return true
		}
	}
	return false
}

// planDeploy checks d and reads what it will send. facts is needed only
// when d.Template is set.
func planDeploy(d Deploy, facts *Facts) (plan, error) {
	p, err := planDeployInner(d, facts)
	if err != nil {
		return plan{}, fmt.Errorf("deploy %s to %s: %w", d.Src, d.Dst, err)
	}
	return p, nil
}

func planDeployInner(d Deploy, facts *Facts) (plan, error) {
	if _, err := cleanDst(d.Dst); err != nil && !strings.HasSuffix(d.Dst, "/") {
		return plan{}, err // checked again below, with the file name for "into DIR/"
	}
	for _, pat := range d.Exclude {
		if _, err := path.Match(pat, ""); err != nil {
			return plan{}, fmt.Errorf("exclude pattern %q: %w", pat, err)
		}
	}
	if d.Template && facts == nil {
		return plan{}, fmt.Errorf("template deploy needs the host's facts")
	}
	if d.Owner != "" {
		if _, _, err := splitOwner(d.Owner); err != nil {
			return plan{}, err
		}
	}
	if d.Src == "" {
		return plan{}, fmt.Errorf("src is empty")
	}
	src, err := filepath.EvalSymlinks(d.Src)
	if err != nil {
		if os.IsNotExist(err) {
			return plan{}, fmt.Errorf("source %s does not exist", d.Src)
		}
		return plan{}, fmt.Errorf("source: %w", err)
	}
	info, err := os.Stat(src)
	if err != nil {
		return plan{}, fmt.Errorf("source: %w", err)
	}
	p := plan{deploy: d}
	switch {
	case info.Mode().IsRegular():
		target := d.Dst
		if strings.HasSuffix(d.Dst, "/") {
			target += filepath.Base(d.Src) // the name the user gave, not a symlink's target
		}
		remote, err := cleanDst(target)
		if err != nil {
			return plan{}, err
		}
		p.root, p.rootMode = path.Dir(remote), 0o755
		e, err := fileEntry(d, facts, src, remote, info)
		if err != nil {
			return plan{}, err
		}
		p.entries = []entry{e}
	case info.IsDir():
		dst, err := cleanDst(d.Dst)
		if err != nil {
			return plan{}, err
		}
		p.root, p.rootMode, p.tree = dst, fileMode(info.Mode()), true
		if err := p.walk(src, facts); err != nil {
			return plan{}, err
		}
	default:
		return plan{}, fmt.Errorf("source %s is not a regular file or directory", d.Src)
	}
	return p, nil
}

func (p *plan) walk(src string, facts *Facts) error {
	var dirs, files []entry
	err := filepath.WalkDir(src, func(local string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if local == src {
			return nil
		}
		relOS, err := filepath.Rel(src, local)
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(relOS)
		if excluded(p.deploy.Exclude, rel) {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		remote := path.Join(p.root, rel)
		if !strings.HasPrefix(remote, p.root+"/") {
			return fmt.Errorf("%s would be written outside %s", rel, p.root)
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		switch {
		case de.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(local)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				return fmt.Errorf("symlink %s -> %s points outside %s (absolute target)", rel, target, p.deploy.Src)
			}
			resolved := filepath.Join(filepath.Dir(relOS), target)
			if resolved == ".." || strings.HasPrefix(resolved, ".."+string(filepath.Separator)) {
				return fmt.Errorf("symlink %s -> %s points outside %s", rel, target, p.deploy.Src)
			}
			files = append(files, entry{kind: kindLink, local: local, remote: remote, link: filepath.ToSlash(target)})
		case de.IsDir():
			dirs = append(dirs, entry{kind: kindDir, local: local, remote: remote, mode: fileMode(info.Mode())})
		case info.Mode().IsRegular():
			e, err := fileEntry(p.deploy, facts, local, remote, info)
			if err != nil {
				return err
			}
			files = append(files, e)
		default:
			return fmt.Errorf("%s is not a regular file, directory or symlink (%s)", rel, info.Mode().Type())
		}
		return nil
	})
	if err != nil {
		return err
	}
	// WalkDir visits in lexical order, so parents come before children.
	sort.SliceStable(dirs, func(i, j int) bool { return strings.Count(dirs[i].remote, "/") < strings.Count(dirs[j].remote, "/") })
	p.entries = append(dirs, files...)
	return nil
}

// fileMode keeps the bits a deploy carries over: permissions and
// setuid/setgid/sticky.
func fileMode(m os.FileMode) os.FileMode {
	return m & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
}

func fileEntry(d Deploy, facts *Facts, local, remote string, info os.FileInfo) (entry, error) {
	e := entry{kind: kindFile, local: local, remote: remote, mode: fileMode(info.Mode())}
	if d.Mode != nil {
		e.mode = fileMode(*d.Mode)
	}
	if d.Template {
		text, err := os.ReadFile(local)
		if err != nil {
			return entry{}, err
		}
		out, err := Render(local, string(text), *facts)
		if err != nil {
			return entry{}, err
		}
		e.data = []byte(out)
		sum := sha256.Sum256(e.data)
		e.sum, e.size = hex.EncodeToString(sum[:]), int64(len(e.data))
		return e, nil
	}
	f, err := os.Open(local)
	if err != nil {
		return entry{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return entry{}, fmt.Errorf("read %s: %w", local, err)
	}
	e.sum, e.size = hex.EncodeToString(h.Sum(nil)), n
	return e, nil
}

// open returns the content to send and a check that it still has the sum
// the plan compared (a file rewritten during the deploy is an error, not a
// silently wrong skip next time).
func (e entry) open() (io.ReadCloser, func() error, error) {
	if e.data != nil {
		return io.NopCloser(bytes.NewReader(e.data)), func() error { return nil }, nil
	}
	f, err := os.Open(e.local)
	if err != nil {
		return nil, nil, err
	}
	h := sha256.New()
	rc := struct {
		io.Reader
		io.Closer
	}{io.TeeReader(f, h), f}
	check := func() error {
		if got := hex.EncodeToString(h.Sum(nil)); got != e.sum {
			return fmt.Errorf("%s changed while it was being deployed", e.local)
		}
		return nil
	}
	return rc, check, nil
}

// splitOwner splits "user[:group]".
func splitOwner(owner string) (user, group string, err error) {
	user, group, _ = strings.Cut(owner, ":")
	if user == "" || strings.ContainsAny(owner, " \t\n'\"\\$`") || strings.Count(owner, ":") > 1 {
		return "", "", fmt.Errorf("owner %q: want user or user:group", owner)
	}
	return user, group, nil
}

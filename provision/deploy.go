package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
)

// DeployOptions says how to deploy to one host.
type DeployOptions struct {
	// Journal records every directory and file written and every mode or
	// owner changed, before the change (adopted hosts; nil for lab VMs).
	Journal *Journal
	// BackupDir is where originals that a deploy replaces are kept for Undo;
	// required with Journal.
	BackupDir string
	// Facts of the host, for Template deploys.
	Facts *Facts
	// Parallel is the number of files in flight (default 4).
	Parallel int
}

// Report counts what a deploy did.
type Report struct {
	Sent    int      // files and symlinks written
	Skipped int      // already identical on the host
	Updated int      // identical content, mode or owner fixed
	Bytes   int64    // content bytes sent
	Changed []string // remote paths written or fixed, sorted
}

func (r *Report) add(o Report) {
	r.Sent += o.Sent
	r.Skipped += o.Skipped
	r.Updated += o.Updated
	r.Bytes += o.Bytes
	r.Changed = append(r.Changed, o.Changed...)
	sort.Strings(r.Changed)
}

func (r Report) String() string {
	return fmt.Sprintf("%d sent (%d bytes), %d unchanged, %d fixed", r.Sent, r.Bytes, r.Skipped, r.Updated)
}

// Deploy copies d to the host. Everything that can be checked without the
// host (destination, sources, escaping symlinks, templates) is checked
// before anything is written. Files whose sha256 already matches on the host
// are skipped; the others are written to a temporary name beside their
// destination and renamed over it, so a reader never sees half a file.
//
// The host's sums come from one `sha256sum` run over the files that have the
// right size, not from a manifest kept on the host: the host's files are the
// truth (a manifest goes stale when someone edits a file in place), and no
// extra file lands in the user's directory.
func (c *Client) Deploy(ctx context.Context, d Deploy, o DeployOptions) (Report, error) {
	p, err := planDeploy(d, o.Facts)
	if err != nil {
		return Report{}, err
	}
	return c.deployPlan(ctx, p, o)
}

func (c *Client) deployPlan(ctx context.Context, p plan, o DeployOptions) (Report, error) {
	rep, err := c.deployPlanInner(ctx, p, o)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return rep, fmt.Errorf("deploy %s to %s:%s: %w", p.deploy.Src, c.Target.Addr, p.deploy.Dst, err)
	}
	return rep, nil
}

func (c *Client) deployPlanInner(ctx context.Context, p plan, o DeployOptions) (Report, error) {
	if o.Journal != nil && o.BackupDir == "" {
		return Report{}, errors.New("a journaled deploy needs a BackupDir")
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	fs, err := openSFTP(c)
	if err != nil {
		return Report{}, err
	}
	defer fs.Close()
	stop := context.AfterFunc(ctx, func() { fs.Close() })
	defer stop()

	dp := &deployer{c: c, fs: fs, p: p, o: o, uid: -1, gid: -1}
	if p.deploy.Owner != "" {
		if dp.uid, dp.gid, err = resolveOwner(ctx, c, p.deploy.Owner); err != nil {
			return Report{}, err
		}
	}
	return dp.run(ctx)
}

type deployer struct {
	c        *Client
	fs       *remoteFS
	p        plan
	o        DeployOptions
	uid, gid int // -1: owner not set

	mu  sync.Mutex
	rep Report
}

// pending is an entry that must be written, with what was there before.
type pending struct {
	e     entry
	prior os.FileInfo // nil: nothing there
	tmp   string
}

func (dp *deployer) run(ctx context.Context) (Report, error) {
	j := dp.o.Journal
	if fi, err := dp.fs.Stat(dp.p.root); err == nil {
		if !fi.IsDir() {
			return Report{}, fmt.Errorf("%s exists and is not a directory", dp.p.root)
		}
	} else if errors.Is(err, os.ErrNotExist) {
		if err := mkdirAll(dp.fs, dp.p.root, dp.p.rootMode, j); err != nil {
			return Report{}, err
		}
		if dp.p.tree {
			if err := dp.chown(dp.p.root); err != nil {
				return Report{}, err
			}
		}
	} else {
		return Report{}, fmt.Errorf("stat %s: %w", dp.p.root, err)
	}

	var dirs, items []entry
	for _, e := range dp.p.entries {
		if e.kind == kindDir {
			dirs = append(dirs, e)
		} else {
			items = append(items, e)
		}
	}
	for _, e := range dirs {
		if err := dp.dir(e); err != nil {
			return Report{}, err
		}
	}

	// What is on the host now, for every file and link.
	priors := make([]os.FileInfo, len(items))
	err := forEach(ctx, len(items), dp.o.Parallel*4, func(_ context.Context, i int) error {
		fi, err := dp.fs.Lstat(items[i].remote)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("stat %s: %w", items[i].remote, err)
		}
		priors[i] = fi
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	var send []pending
	var candidates []int // same size regular files: compare sums
	for i, e := range items {
		fi := priors[i]
		switch {
		case fi == nil:
			send = append(send, pending{e: e})
		case fi.IsDir():
			hint := ""
			if !dp.p.tree {
				hint = " (end dst with / to copy the file into it)"
			}
			return Report{}, fmt.Errorf("%s is a directory on the host where %s has a %s%s", e.remote, e.local, e.kind, hint)
		case e.kind == kindLink:
			if fi.Mode()&os.ModeSymlink != 0 {
				if target, err := dp.fs.ReadLink(e.remote); err == nil && target == e.link {
					dp.rep.Skipped++
					continue
				}
			}
			send = append(send, pending{e: e, prior: fi})
		case fi.Mode().IsRegular() && fi.Size() == e.size:
			candidates = append(candidates, i)
		case fi.Mode().IsRegular() || fi.Mode()&os.ModeSymlink != 0:
			send = append(send, pending{e: e, prior: fi})
		default:
			return Report{}, fmt.Errorf("%s on the host is a %s, not a file", e.remote, fi.Mode().Type())
		}
	}
	if len(candidates) > 0 {
		names := make([]string, len(candidates))
		for k, i := range candidates {
			names[k] = items[i].remote
		}
		sums, err := remoteSums(ctx, dp.c, names)
		if err != nil {
			return Report{}, err
		}
		for _, i := range candidates {
			e := items[i]
			if sums[e.remote] != e.sum {
				send = append(send, pending{e: e, prior: priors[i]})
				continue
			}
			fixed, err := dp.fixMeta(e.remote, priors[i], e.mode)
			if err != nil {
				return Report{}, err
			}
			if fixed {
				dp.rep.Updated++
				dp.rep.Changed = append(dp.rep.Changed, e.remote)
			} else {
				dp.rep.Skipped++
			}
		}
	}
	if err := dp.send(ctx, send); err != nil {
		return Report{}, err
	}
	sort.Strings(dp.rep.Changed)
	return dp.rep, nil
}

// dir makes or fixes one directory of the tree.
func (dp *deployer) dir(e entry) error {
	fi, err := dp.fs.Lstat(e.remote)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := mkdir(dp.fs, e.remote, e.mode, dp.o.Journal); err != nil {
			return err
		}
		return dp.chown(e.remote)
	case err != nil:
		return fmt.Errorf("stat %s: %w", e.remote, err)
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symlink on the host where %s has a directory: forgelab does not write through it", e.remote, e.local)
	case !fi.IsDir():
		return fmt.Errorf("%s is a %s on the host where %s has a directory", e.remote, describe(fi), e.local)
	}
	fixed, err := dp.fixMeta(e.remote, fi, e.mode)
	if fixed {
		dp.rep.Changed = append(dp.rep.Changed, e.remote)
	}
	return err
}

func describe(fi os.FileInfo) string {
	if fi.Mode().IsRegular() {
		return "file"
	}
	return fi.Mode().Type().String()
}

func (dp *deployer) chown(p string) error {
	if dp.uid < 0 {
		return nil
	}
	if err := dp.fs.Chown(p, dp.uid, dp.gid); err != nil {
		return fmt.Errorf("chown %s: %w", p, err)
	}
	return nil
}

// fixMeta gives an existing path the wanted mode and owner, saving the
// originals in the journal first. It reports whether it changed anything.
func (dp *deployer) fixMeta(p string, fi os.FileInfo, want os.FileMode) (bool, error) {
	st, _ := fi.Sys().(*sftp.FileStat)
	cur := fileMode(fi.Mode())
	ownerDiff := dp.uid >= 0 && st != nil && (int(st.UID) != dp.uid || int(st.GID) != dp.gid)
	if cur == want && !ownerDiff {
		return false, nil
	}
	j := dp.o.Journal
	if j != nil && st != nil && !j.owns(p) && !j.hasMeta(p) {
		if err := j.record(Change{Kind: ChangeMeta, Path: p, Mode: unixMode(cur), UID: int(st.UID), GID: int(st.GID)}); err != nil {
			return false, err
		}
	}
	if ownerDiff {
		if err := dp.chown(p); err != nil {
			return false, err
		}
	}
	// chown clears setuid/setgid: set the mode after it.
	if err := dp.fs.Chmod(p, want); err != nil {
		return false, fmt.Errorf("chmod %s: %w", p, err)
	}
	return true, nil
}

// send writes every pending entry to a temporary name, saves what it
// replaces (journaled hosts), then renames them into place. If anything
// fails before the renames, every temporary file is removed.
func (dp *deployer) send(ctx context.Context, todo []pending) error {
	if len(todo) == 0 {
		return nil
	}
	var written []int
	var wmu sync.Mutex
	cleanup := func() {
		for _, i := range written {
			dp.fs.Remove(todo[i].tmp)
		}
	}
	err := forEach(ctx, len(todo), dp.o.Parallel, func(_ context.Context, i int) error {
		tmp, n, err := dp.writeOne(todo[i].e)
		if tmp != "" {
			wmu.Lock()
			todo[i].tmp = tmp
			written = append(written, i)
			wmu.Unlock()
		}
		if err != nil {
			return err
		}
		dp.mu.Lock()
		dp.rep.Bytes += n
		dp.mu.Unlock()
		return nil
	})
	if err == nil {
		err = dp.journal(ctx, todo)
	}
	if err != nil {
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if ctx.Err() != nil {
			// fs was closed by the cancellation: remove through a new session.
			var names []string
			for _, i := range written {
				names = append(names, ShellQuote(todo[i].tmp))
			}
			if len(names) > 0 {
				rootScript(cleanupCtx, dp.c, "rm -f -- "+strings.Join(names, " ")+"\n")
			}
		} else {
			cleanup()
		}
		return err
	}
	for _, pd := range todo {
		if err := rename(dp.fs, pd.tmp, pd.e.remote); err != nil {
			cleanup()
			return err
		}
		dp.rep.Sent++
		dp.rep.Changed = append(dp.rep.Changed, pd.e.remote)
	}
	return nil
}

// writeOne writes e's content (or link) to a temporary name with the right
// mode and owner. A returned tmp name must be removed on failure.
func (dp *deployer) writeOne(e entry) (tmp string, n int64, err error) {
	if e.kind == kindLink {
		tmp = tmpName(e.remote)
		// pkg/sftp orders the arguments as OpenSSH's server expects.
		if err := dp.fs.Symlink(e.link, tmp); err != nil {
			return "", 0, fmt.Errorf("symlink %s: %w", e.remote, err)
		}
		return tmp, 0, nil
	}
	rc, check, err := e.open()
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	tmp, n, err = writeTemp(dp.fs, e.remote, rc, e.mode)
	if err != nil {
		return "", 0, err
	}
	if err := check(); err != nil {
		return tmp, n, err
	}
	if dp.uid >= 0 {
		if err := dp.chown(tmp); err != nil {
			return tmp, n, err
		}
		if e.mode&(os.ModeSetuid|os.ModeSetgid) != 0 {
			if err := dp.fs.Chmod(tmp, e.mode); err != nil {
				return tmp, n, err
			}
		}
	}
	return tmp, n, nil
}

// journal records every path about to be replaced or created, copying
// originals (content, mode, owner, times) to the backup directory first.
func (dp *deployer) journal(ctx context.Context, todo []pending) error {
	j := dp.o.Journal
	if j == nil {
		return nil
	}
	type backup struct{ path, to string }
	var backups []backup
	for _, pd := range todo {
		if pd.prior != nil && !j.owns(pd.e.remote) {
			backups = append(backups, backup{pd.e.remote, j.nextBackup(dp.o.BackupDir, pd.e.remote)})
		}
	}
	if len(backups) > 0 {
		if err := mkdirAll(dp.fs, dp.o.BackupDir, 0o700, j); err != nil {
			return fmt.Errorf("backup directory: %w", err)
		}
		var script strings.Builder
		script.WriteString("set -e\n")
		for _, b := range backups {
			fmt.Fprintf(&script, "cp -a -- %s %s\n", ShellQuote(b.path), ShellQuote(b.to))
		}
		if _, err := rootScript(ctx, dp.c, script.String()); err != nil {
			return fmt.Errorf("save originals before replacing them: %w", err)
		}
		for _, b := range backups {
			if err := j.record(Change{Kind: ChangeFile, Path: b.path, Backup: b.to}); err != nil {
				return err
			}
		}
	}
	for _, pd := range todo {
		if pd.prior == nil && !j.owns(pd.e.remote) {
			if err := j.record(Change{Kind: ChangeFile, Path: pd.e.remote}); err != nil {
				return err
			}
		}
	}
	return nil
}

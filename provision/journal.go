package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// Journal lists, in order, every change forgelab made on a host it does not
// own (an adopted physical host), so that Undo can take each one back and
// leave the host as it was. A change is recorded, and the journal saved,
// before it is made: a crash in between leaves an entry whose undo finds
// nothing to do, never a change nobody knows about.
//
// The journal is plain data: the caller keeps it in the lab's state
// (encoding/json) and sets Save to persist it.
type Journal struct {
	Host       string   `json:"host"`
	Changes    []Change `json:"changes"`
	NextBackup int      `json:"next_backup"`

	// Save persists the journal after every new entry. nil: kept in memory.
	Save func(*Journal) error `json:"-"`

	mu sync.Mutex
}

// ChangeKind names what a Change did.
type ChangeKind string

const (
	ChangeDir     ChangeKind = "dir"     // created directory Path
	ChangeFile    ChangeKind = "file"    // wrote Path; Backup holds the original ("" if there was none)
	ChangeMeta    ChangeKind = "meta"    // changed mode/owner of Path; Mode, UID, GID are the originals
	ChangeUnit    ChangeKind = "unit"    // installed systemd unit Name at Path
	ChangeProcess ChangeKind = "process" // service Name supervised from directory Path (no systemd)
	ChangeQdisc   ChangeKind = "qdisc"   // replaced the root qdisc of Dev; Prior is `tc qdisc show dev Dev`
	ChangeNetdev  ChangeKind = "netdev"  // created network device Dev (a link's tunnel end)
)

// Change is one journal entry.
type Change struct {
	Kind   ChangeKind `json:"kind"`
	Path   string     `json:"path,omitempty"`
	Backup string     `json:"backup,omitempty"`
	Mode   uint32     `json:"mode,omitempty"` // unix mode bits (perm, setuid, setgid, sticky)
	UID    int        `json:"uid,omitempty"`
	GID    int        `json:"gid,omitempty"`
	Name   string     `json:"name,omitempty"`
	Dev    string     `json:"dev,omitempty"`
	Prior  string     `json:"prior,omitempty"`
	Time   time.Time  `json:"time"`
}

func (ch Change) String() string {
	switch ch.Kind {
	case ChangeUnit, ChangeProcess:
		return fmt.Sprintf("%s %s", ch.Kind, ch.Name)
	case ChangeQdisc:
		return fmt.Sprintf("qdisc on %s", ch.Dev)
	case ChangeNetdev:
		return fmt.Sprintf("netdev %s", ch.Dev)
	default:
		return fmt.Sprintf("%s %s", ch.Kind, ch.Path)
	}
}

// NewJournal starts an empty journal for host.
func NewJournal(host string) *Journal { return &Journal{Host: host} }

// record appends ch and saves. A nil journal records nothing (lab VMs are
// thrown away whole, they need no journal).
func (j *Journal) record(ch Change) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	ch.Time = time.Now().UTC()
	j.Changes = append(j.Changes, ch)
	return j.saveLocked()
}

func (j *Journal) saveLocked() error {
	if j.Save == nil {
		return nil
	}
	if err := j.Save(j); err != nil {
		return fmt.Errorf("save journal of %s: %w", j.Host, err)
	}
	return nil
}

// owns reports whether forgelab already created or replaced path: then its
// current content is forgelab's and there is no original left to save.
func (j *Journal) owns(p string) bool {
	if j == nil {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, ch := range j.Changes {
		if (ch.Kind == ChangeFile || ch.Kind == ChangeDir) && ch.Path == p {
			return true
		}
	}
	return false
}

// hasMeta reports whether the original mode/owner of p is already saved.
func (j *Journal) hasMeta(p string) bool {
	if j == nil {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, ch := range j.Changes {
		if ch.Kind == ChangeMeta && ch.Path == p {
			return true
		}
	}
	return false
}

func (j *Journal) hasKind(kind ChangeKind, name string) bool {
	if j == nil {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, ch := range j.Changes {
		if ch.Kind == kind && ch.Name == name {
			return true
		}
	}
	return false
}

// nextBackup reserves a backup file name under dir for the original of p.
func (j *Journal) nextBackup(dir, p string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.NextBackup++
	base := path.Base(p)
	if len(base) > 200 {
		base = base[:200]
	}
	return path.Join(dir, fmt.Sprintf("%06d-%s", j.NextBackup, base))
}

// Undo takes back every change in j, newest first, and keeps in j only
// those it could not undo (saving after each step). It runs on
// context.WithoutCancel(ctx) so Ctrl-C cannot leave a host half restored.
func Undo(ctx context.Context, c *Client, j *Journal) error {
	if j == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	j.mu.Lock()
	defer j.mu.Unlock()
	var errs []error
	var failed []Change
	for i := len(j.Changes) - 1; i >= 0; i-- {
		ch := j.Changes[i]
		if err := undoChange(ctx, c, ch); err != nil {
			errs = append(errs, fmt.Errorf("undo %s on %s: %w", ch, j.Host, err))
			failed = append([]Change{ch}, failed...)
		}
		j.Changes = append(j.Changes[:i:i], failed...)
		if err := j.saveLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func undoChange(ctx context.Context, c *Client, ch Change) error {
	var script string
	q := ShellQuote
	switch ch.Kind {
	case ChangeDir:
		script = fmt.Sprintf(`d=%s
[ -d "$d" ] && [ ! -L "$d" ] || exit 0
rmdir -- "$d" 2>/dev/null && exit 0
echo "directory $d is not empty, it holds files forgelab did not write:" >&2
ls -A -- "$d" | head -n 10 >&2
exit 1
`, q(ch.Path))
	case ChangeFile:
		dir, base := path.Split(ch.Path)
		tmps := q(dir+"."+truncBase(base)+tmpMarker) + "*"
		if ch.Backup == "" {
			script = fmt.Sprintf("rm -f -- %s %s\n", q(ch.Path), tmps)
		} else {
			script = fmt.Sprintf(`rm -f -- %s
if [ ! -e %s ] && [ ! -L %s ]; then echo "backup %s of the original is missing" >&2; exit 1; fi
mv -f -- %s %s
`, tmps, q(ch.Backup), q(ch.Backup), ch.Backup, q(ch.Backup), q(ch.Path))
		}
	case ChangeMeta:
		script = fmt.Sprintf("[ -e %[1]s ] || exit 0\nchown -h %[2]d:%[3]d -- %[1]s && chmod %[4]o -- %[1]s\n",
			q(ch.Path), ch.UID, ch.GID, ch.Mode)
	case ChangeUnit:
		u := q(ch.Name)
		script = fmt.Sprintf("systemctl stop %s 2>/dev/null\nsystemctl disable --quiet %s 2>/dev/null\nsystemctl reset-failed %s 2>/dev/null\nrm -f -- %s\nsystemctl daemon-reload\n",
			u, u, u, q(ch.Path))
	case ChangeProcess:
		script = processStopScript(ch.Path) + fmt.Sprintf("cd -- %s 2>/dev/null || exit 0\nrm -f -- run log pid .run%s*\n", q(ch.Path), tmpMarker)
	case ChangeNetdev:
		if !devName.MatchString(ch.Dev) {
			return fmt.Errorf("netdev %q is not an interface name", ch.Dev)
		}
		script = fmt.Sprintf("PATH=\"$PATH:/usr/sbin:/sbin\"\nip link del dev %s 2>/dev/null || true\n", ShellQuote(ch.Dev))
	case ChangeQdisc:
		cmd, err := qdiscRestoreCommand(ch.Dev, ch.Prior)
		if err != nil {
			return err
		}
		script = cmd + "\n"
	default:
		return fmt.Errorf("unknown change kind %q", ch.Kind)
	}
	if _, err := rootScript(ctx, c, script); err != nil {
		return err
	}
	return nil
}

// unixMode turns an os.FileMode into the mode bits chmod takes.
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// tmpMarker is in the name of every temporary file forgelab writes:
// dir/.name.forgelab-tmp-XXXXXXXX, renamed over dir/name when complete.
const tmpMarker = ".forgelab-tmp-"

func truncBase(base string) string {
	if len(base) > 200 {
		return base[:200]
	}
	return base
}

func isTmpName(base string) bool { return strings.Contains(base, tmpMarker) }

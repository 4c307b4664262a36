package guestinit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// System is what Apply needs from the machine besides files below its root:
// the programs that own /etc/passwd and /etc/shadow, and the kernel's
// hostname. Tests use a fake.
type System interface {
	// Run runs a program with stdin; its output is the error's text on failure.
	Run(stdin, name string, args ...string) error
	SetHostname(name string) error
}

// stateFile records the instance whose per-instance steps are done. Like
// cloud-init, users, keys and files are applied once per instance id; the
// hostname and network every boot.
const stateFile = "/var/lib/forgelab-guestinit/instance-id"

// Apply makes the machine below root what the seed says. Steps that fail
// are reported together at the end; the others still run, so a bad
// write_files entry does not leave a guest without SSH.
func Apply(root string, s Seed, sys System, log io.Writer) error {
	a := applier{root: root, sys: sys, log: log}
	for _, k := range s.Ignored {
		a.logf("ignored cloud-config key %q (not supported without cloud-init)", k)
	}
	a.do("hostname", func() error { return a.hostname(s) })
	a.do("network", func() error { return a.network(s.Network) })

	done, _ := os.ReadFile(a.path(stateFile))
	if strings.TrimSpace(string(done)) == s.InstanceID {
		a.logf("instance %s: users, keys and files already applied", s.InstanceID)
		return errors.Join(a.errs...)
	}
	a.do("host keys", func() error { return a.hostKeys(s) })
	if len(s.Users) > 0 {
		a.do("users", func() error { return a.users(s.Users) })
	}
	if rules := Sudoers(s.Users); rules != "" {
		a.do("sudoers", func() error { return a.write("/etc/sudoers.d/90-cloud-init-users", rules, 0o440, -1, -1) })
	}
	if s.ManageEtcHosts != "" {
		a.do("/etc/hosts", func() error {
			b, err := os.ReadFile(a.path("/etc/hosts"))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return a.write("/etc/hosts", EtcHosts(string(b), s.Hostname, s.FQDN), 0o644, -1, -1)
		})
	}
	for _, f := range s.Files {
		a.do("write_files "+f.Path, func() error { return a.file(f) })
	}
	if len(a.errs) == 0 {
		a.do("state", func() error { return a.write(stateFile, s.InstanceID+"\n", 0o644, -1, -1) })
	}
	return errors.Join(a.errs...)
}

type applier struct {
	root string
	sys  System
	log  io.Writer
	errs []error
}

func (a *applier) logf(format string, args ...any) { fmt.Fprintf(a.log, format+"\n", args...) }

func (a *applier) do(step string, fn func() error) {
	if err := fn(); err != nil {
		a.errs = append(a.errs, fmt.Errorf("%s: %w", step, err))
		a.logf("%s: FAILED: %v", step, err)
		return
	}
	a.logf("%s: ok", step)
}

func (a *applier) path(p string) string { return filepath.Join(a.root, p) }

func (a *applier) hostname(s Seed) error {
	if err := a.write("/etc/hostname", s.Hostname+"\n", 0o644, -1, -1); err != nil {
		return err
	}
	return a.sys.SetHostname(s.Hostname)
}

func (a *applier) network(n Network) error {
	if len(n.Ethernets) == 0 {
		return nil
	}
	dir := a.path(networkDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, networkFile+"*"))
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	files := NetworkFiles(n)
	for _, name := range sortedKeys(files) {
		if err := a.write(filepath.Join(networkDir, name), files[name], 0o644, -1, -1); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) hostKeys(s Seed) error {
	if s.DeleteHostKeys || len(s.HostKeys) > 0 {
		old, _ := filepath.Glob(a.path("/etc/ssh/ssh_host_*"))
		for _, p := range old {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for _, typ := range sortedKeys(s.HostKeys) {
		k := s.HostKeys[typ]
		priv := k.Private
		if !strings.HasSuffix(priv, "\n") {
			priv += "\n"
		}
		base := "/etc/ssh/ssh_host_" + typ + "_key"
		if err := a.write(base, priv, 0o600, -1, -1); err != nil {
			return err
		}
		if err := a.write(base+".pub", k.Public+"\n", 0o644, -1, -1); err != nil {
			return err
		}
	}
	// sshd refuses to start without a host key; the seed normally has one
	// (forgelab pins it in known_hosts), otherwise make one as Debian would.
	if _, err := os.Stat(a.path("/etc/ssh/ssh_host_ed25519_key")); errors.Is(err, fs.ErrNotExist) && len(s.HostKeys) == 0 {
		return a.sys.Run("", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/etc/ssh/ssh_host_ed25519_key")
	}
	return nil
}

func (a *applier) users(users []User) error {
	db, err := a.readUserDB()
	if err != nil {
		return err
	}
	type keys struct {
		dir, file string
		uid, gid  int
		lines     []string
	}
	var ks []keys
	for _, u := range users {
		uid, gid, home, err := a.ensureUser(db, u)
		if err != nil {
			return fmt.Errorf("%s: %w", u.Name, err)
		}
		if len(u.SSHAuthorizedKeys) > 0 {
			dir := filepath.Join(home, ".ssh")
			ks = append(ks, keys{dir, filepath.Join(dir, "authorized_keys"), uid, gid, u.SSHAuthorizedKeys})
		}
	}
	if err := db.write(); err != nil {
		return err
	}
	for _, k := range ks {
		if err := os.MkdirAll(a.path(k.dir), 0o700); err != nil {
			return err
		}
		if err := os.Chown(a.path(k.dir), k.uid, k.gid); err != nil {
			return err
		}
		if err := a.write(k.file, strings.Join(k.lines, "\n")+"\n", 0o600, k.uid, k.gid); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) file(f File) error {
	uid, gid := -1, -1
	if f.Owner != "" {
		user, group, _ := strings.Cut(f.Owner, ":")
		var ok bool
		if uid, gid, ok = a.lookup(user); !ok {
			return fmt.Errorf("owner %s: no such user", user)
		}
		if group != "" && group != user {
			if gid, ok = a.groupID(group); !ok {
				return fmt.Errorf("owner %s: no such group", f.Owner)
			}
		}
	}
	if !f.Append {
		return a.write(f.Path, f.Content, os.FileMode(f.Permissions), uid, gid)
	}
	if err := os.MkdirAll(filepath.Dir(a.path(f.Path)), 0o755); err != nil {
		return err
	}
	fh, err := os.OpenFile(a.path(f.Path), os.O_WRONLY|os.O_APPEND|os.O_CREATE, os.FileMode(f.Permissions))
	if err != nil {
		return err
	}
	if _, err := fh.WriteString(f.Content); err != nil {
		fh.Close()
		return err
	}
	if uid >= 0 {
		if err := fh.Chown(uid, gid); err != nil {
			fh.Close()
			return err
		}
	}
	return fh.Close()
}

// write replaces a file atomically (temporary file, fsync, rename) with
// the given mode and, when uid >= 0, owner.
func (a *applier) write(p, content string, mode os.FileMode, uid, gid int) error {
	dst := a.path(p)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".guestinit-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// lookup reads the user's ids from /etc/passwd below root (not through
// NSS: the program is static, and root may be a test directory).
func (a *applier) lookup(name string) (uid, gid int, ok bool) {
	f := a.colonFile("/etc/passwd", name)
	if len(f) < 6 {
		return 0, 0, false
	}
	uid, err1 := strconv.Atoi(f[2])
	gid, err2 := strconv.Atoi(f[3])
	return uid, gid, err1 == nil && err2 == nil
}

func (a *applier) groupID(name string) (int, bool) {
	f := a.colonFile("/etc/group", name)
	if len(f) < 3 {
		return 0, false
	}
	gid, err := strconv.Atoi(f[2])
	return gid, err == nil
}

func (a *applier) colonFile(p, name string) []string {
	fh, err := os.Open(a.path(p))
	if err != nil {
		return nil
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if f := strings.Split(sc.Text(), ":"); f[0] == name {
			return f
		}
	}
	return nil
}

package provision

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// remoteFS is an SFTP session on one host. For a root login it is the
// host's sftp subsystem; for other users the sftp server is started through
// `sudo -n`, so every write has root's rights like the rest of forgelab's
// changes.
type remoteFS struct {
	*sftp.Client
	session *ssh.Session
}

// sftpServerScript finds the sftp-server binary of the distributions we
// know (Debian/Ubuntu, Fedora/RHEL, Arch/Alpine) and runs it.
const sftpServerScript = `for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server; do [ -x "$p" ] && exec "$p"; done; echo "no sftp-server found" >&2; exit 127`

func openSFTP(c *Client) (*remoteFS, error) {
	opts := []sftp.ClientOption{sftp.UseConcurrentWrites(true)}
	if isRoot(c) {
		cl, err := sftp.NewClient(c.Client, opts...)
		if err != nil {
			return nil, fmt.Errorf("start sftp on %s (is the sftp subsystem enabled in sshd_config?): %w", c.Target.Addr, err)
		}
		return &remoteFS{Client: cl}, nil
	}
	s, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	var stderr bytes.Buffer
	s.Stderr = &limitedBuffer{buf: &stderr, max: 4096}
	if err := s.Start("sudo -n sh -c " + ShellQuote(sftpServerScript)); err != nil {
		s.Close()
		return nil, fmt.Errorf("start sftp-server through sudo: %w", err)
	}
	cl, err := sftp.NewClientPipe(stdout, stdin, opts...)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("start sftp-server through sudo on %s: %w (%s)", c.Target.Addr, err, strings.TrimSpace(stderr.String()))
	}
	return &remoteFS{Client: cl, session: s}, nil
}

func (r *remoteFS) Close() error {
	err := r.Client.Close()
	if r.session != nil {
		r.session.Close()
	}
	return err
}

type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		l.buf.Write(p[:room])
	}
	return len(p), nil
}

// tmpName is where a file is written before it is renamed over final: the
// same directory (so the rename is atomic), hidden, marked as forgelab's.
func tmpName(final string) string {
	dir, base := path.Split(final)
	var b [4]byte
	rand.Read(b[:])
	return dir + "." + truncBase(base) + tmpMarker + hex.EncodeToString(b[:])
}

// mkdirAll creates dir and its missing parents with mode, recording each
// directory it creates in j before creating it. Existing components are
// followed (a parent may be a symlink the host's owner made).
func mkdirAll(fs *remoteFS, dir string, mode os.FileMode, j *Journal) error {
	var missing []string
	for p := dir; p != "/" && p != "."; p = path.Dir(p) {
		fi, err := fs.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s exists and is not a directory", p)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		missing = append(missing, p)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := mkdir(fs, missing[i], mode, j); err != nil {
			return err
		}
	}
	return nil
}

// mkdir creates one directory with mode (set explicitly: the server's umask
// applies to Mkdir), journaled first.
func mkdir(fs *remoteFS, p string, mode os.FileMode, j *Journal) error {
	if err := j.record(Change{Kind: ChangeDir, Path: p}); err != nil {
		return err
	}
	if err := fs.Mkdir(p); err != nil {
		if fi, serr := fs.Stat(p); serr == nil && fi.IsDir() {
			return nil // made meanwhile by someone else
		}
		return fmt.Errorf("mkdir %s: %w", p, err)
	}
	if err := fs.Chmod(p, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	return nil
}

// writeTemp writes r to a new temporary file beside final with mode and
// returns its name. The mode is set before any byte is written, so a secret
// is never readable by others, even for a moment. On error nothing is left.
func writeTemp(fs *remoteFS, final string, r io.Reader, mode os.FileMode) (string, int64, error) {
	tmp := tmpName(final)
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return "", 0, fmt.Errorf("create %s: %w", tmp, err)
	}
	fail := func(err error) (string, int64, error) {
		f.Close()
		fs.Remove(tmp)
		return "", 0, err
	}
	if err := f.Chmod(mode); err != nil {
		return fail(fmt.Errorf("chmod %s: %w", tmp, err))
	}
	n, err := f.ReadFrom(r)
	if err != nil {
		return fail(fmt.Errorf("write %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		fs.Remove(tmp)
		return "", 0, fmt.Errorf("close %s: %w", tmp, err)
	}
	return tmp, n, nil
}

// rename moves tmp over final atomically (posix-rename@openssh.com, which
// every OpenSSH server has; plain SFTP rename refuses to overwrite).
func rename(fs *remoteFS, tmp, final string) error {
	if _, ok := fs.HasExtension("posix-rename@openssh.com"); ok {
		if err := fs.PosixRename(tmp, final); err != nil {
			return fmt.Errorf("rename %s to %s: %w", tmp, final, err)
		}
		return nil
	}
	fs.Remove(final)
	if err := fs.Rename(tmp, final); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, final, err)
	}
	return nil
}

// writeFileAtomic writes data to p through a temporary file and a rename.
func writeFileAtomic(fs *remoteFS, p string, data []byte, mode os.FileMode) error {
	tmp, _, err := writeTemp(fs, p, bytes.NewReader(data), mode)
	if err != nil {
		return err
	}
	if err := rename(fs, tmp, p); err != nil {
		fs.Remove(tmp)
		return err
	}
	return nil
}

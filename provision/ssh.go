// Package provision talks to lab hosts over SSH: readiness, commands, file
// deployment, services and the adoption of physical hosts.
package provision

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// KeyPair is an ed25519 key in OpenSSH formats.
type KeyPair struct {
	Private []byte // OpenSSH PEM
	Public  string // authorized_keys line, without trailing newline
}

// NewKeyPair makes a fresh ed25519 key; comment ends the public line.
func NewKeyPair(comment string) (KeyPair, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal public key: %w", err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if comment != "" {
		line += " " + comment
	}
	return KeyPair{Private: pem.EncodeToMemory(block), Public: line}, nil
}

// WriteFile writes the private key with mode 0600 and the public key beside
// it as path.pub.
func (k KeyPair) WriteFile(path string) error {
	if err := os.WriteFile(path, k.Private, 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	// WriteFile keeps the mode of an existing file: make sure it is 0600.
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	return os.WriteFile(path+".pub", []byte(k.Public+"\n"), 0o644)
}

// LoadSigner reads an OpenSSH private key file.
func LoadSigner(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("parse key %s: %w", path, err)
	}
	return s, nil
}

// KnownHostsLine renders one known_hosts line for addr (host or host:port).
func KnownHostsLine(addr, authorizedKey string) (string, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return "", fmt.Errorf("parse host key: %w", err)
	}
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, pub), nil
}

// Target says how to reach one host.
type Target struct {
	Addr    string // host:port
	User    string
	Signer  ssh.Signer
	HostKey ssh.HostKeyCallback // never ssh.InsecureIgnoreHostKey outside tests
	// HostKeyAlgorithms limits the host key types asked for to the ones
	// known_hosts holds; otherwise x/crypto asks for ECDSA first and a host
	// known by its ed25519 key looks changed.
	HostKeyAlgorithms []string
	// Auth replaces Signer when set (an agent, several keys).
	Auth []ssh.AuthMethod
}

// Client is an SSH connection to one host.
type Client struct {
	*ssh.Client
	Target Target
}

// Dial connects once, honouring ctx for the TCP connect and the handshake.
func Dial(ctx context.Context, t Target) (*Client, error) { return dial(ctx, t, 0) }

// dial is Dial with a bound on the TCP connect alone (0: ctx's).
func dial(ctx context.Context, t Target, connectTimeout time.Duration) (*Client, error) {
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              t.Auth,
		HostKeyCallback:   t.HostKey,
		HostKeyAlgorithms: t.HostKeyAlgorithms,
		Timeout:           10 * time.Second,
	}
	if len(cfg.Auth) == 0 && t.Signer != nil {
		cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(t.Signer)}
	}
	d := net.Dialer{Timeout: connectTimeout}
	conn, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	// The handshake has no context: bound it by a deadline and by ctx.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(cfg.Timeout))
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, chans, reqs, err := ssh.NewClientConn(conn, t.Addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return &Client{Client: ssh.NewClient(c, chans, reqs), Target: t}, nil
}

// ErrHostKey marks a host key mismatch: retrying does not help.
var ErrHostKey = errors.New("host key mismatch")

// WaitSSH dials until the host accepts a login and runs `true`, or ctx ends.
// The last dial error is returned with ctx's error so the caller can say why.
func WaitSSH(ctx context.Context, t Target, poll time.Duration) (*Client, error) {
	var last error
	for {
		attempt, cancel := context.WithTimeout(ctx, 15*time.Second)
		// A guest whose address is not up yet answers no ARP, and the
		// kernel gives up on a connect only after about 3 s: bound the
		// connect so the first try after the address comes up is not
		// held behind a stale one. A guest that is up accepts in
		// milliseconds, even under emulation.
		c, err := dial(attempt, t, 2*time.Second)
		if err == nil {
			_, err = c.Output(attempt, "true")
			if err == nil {
				cancel()
				return c, nil
			}
			c.Close()
		}
		cancel()
		var kerr *knownhosts.KeyError
		if errors.As(err, &kerr) && len(kerr.Want) > 0 {
			return nil, fmt.Errorf("%s: %w: %v", t.Addr, ErrHostKey, err)
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s did not answer SSH: %w (last error: %v)", t.Addr, ctx.Err(), last)
		case <-time.After(poll):
		}
	}
}

// ExitError is a remote command that ran and exited non-zero.
type ExitError struct {
	Cmd    string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%q exited with status %d", Redact(e.Cmd), e.Code)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// Run runs cmd through the remote shell. It returns the exit code; err is
// non-nil only when the command could not be run or was cancelled, so a
// non-zero exit is (code, nil).
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return c.run(ctx, cmd, stdin, stdout, stderr, nil)
}

// run is Run with onCancel called first when ctx ends: closing a session
// ends only its first process, and sshd keeps the channel open while
// anything else still holds its output, so a caller that started more
// (a workload's process group) ends them there.
func (c *Client) run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer, onCancel func()) (int, error) {
	s, err := c.NewSession()
	if err != nil {
		return -1, fmt.Errorf("open session: %w", err)
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if err := s.Start(cmd); err != nil {
		return -1, fmt.Errorf("start %q: %w", Redact(cmd), err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		if onCancel != nil {
			onCancel()
		}
		s.Signal(ssh.SIGKILL)
		s.Close()
		// Wait returns once the session's output copies have finished, so
		// the caller's writers are no longer in use when Run returns.
		<-done
		return -1, ctx.Err()
	}
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		return exit.ExitStatus(), nil
	default:
		return -1, fmt.Errorf("run %q: %w", Redact(cmd), err)
	}
}

// Output runs cmd and returns its stdout; a non-zero exit is an *ExitError
// carrying stderr.
func (c *Client) Output(ctx context.Context, cmd string) ([]byte, error) {
	var out, errb bytes.Buffer
	code, err := c.Run(ctx, cmd, nil, &out, &errb)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return out.Bytes(), &ExitError{Cmd: cmd, Code: code, Stderr: errb.String()}
	}
	return out.Bytes(), nil
}

// HostKeyCallback reads a known_hosts file that forgelab wrote.
func HostKeyCallback(knownHostsPath string) (ssh.HostKeyCallback, error) {
	cb, err := knownhosts.New(filepath.Clean(knownHostsPath))
	if err != nil {
		return nil, fmt.Errorf("read known_hosts: %w", err)
	}
	return cb, nil
}

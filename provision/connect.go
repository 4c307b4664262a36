package provision

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// UnknownHostKeyError is a host whose key is not in the lab's known_hosts
// and that the lab file does not allow to be trusted on first use.
type UnknownHostKeyError struct {
	Addr       string
	KnownHosts string // where trust_on_first_use saves the key
	AddTo      string // where the user can add it by hand ("": KnownHosts)
	Key        ssh.PublicKey
}

func (e *UnknownHostKeyError) Error() string {
	short := strings.TrimPrefix(e.Key.Type(), "ssh-") // ed25519, rsa
	if strings.HasPrefix(short, "ecdsa") {
		short = "ecdsa"
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(e.Addr)}, e.Key)
	addTo := e.AddTo
	if addTo == "" {
		addTo = e.KnownHosts
	}
	return fmt.Sprintf("host key of %s is not known: %s %s\n"+
		"  check it on the host: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub\n"+
		"  then trust it: set trust_on_first_use = true for this host in the lab file (forgelab saves the key in %s),\n"+
		"  or add this line to %s:\n  %s",
		e.Addr, e.Key.Type(), ssh.FingerprintSHA256(e.Key), short, e.KnownHosts, addTo, line)
}

// HostKeyChangedError is a host that offered a key other than the one
// known_hosts holds for it.
type HostKeyChangedError struct {
	Addr    string
	Key     ssh.PublicKey
	Want    []knownhosts.KnownKey
	Unknown bool
}

func (e *HostKeyChangedError) Error() string {
	var known []string
	for _, k := range e.Want {
		known = append(known, fmt.Sprintf("%s %s (%s line %d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
	}
	return fmt.Sprintf("%s: HOST KEY CHANGED for %s: it offered %s %s, known_hosts has %s. "+
		"A reinstalled host or a man-in-the-middle: forgelab refuses to connect. If the host was reinstalled, remove that line and connect again.",
		ErrHostKey, e.Addr, e.Key.Type(), ssh.FingerprintSHA256(e.Key), strings.Join(known, ", "))
}

func (e *HostKeyChangedError) Unwrap() error { return ErrHostKey }

// hostKeyPolicy checks host keys against a known_hosts file, saving new
// ones when trustOnFirstUse is set.
type hostKeyPolicy struct {
	file            string
	also            []string // read too, never written (the user's own known_hosts)
	trustOnFirstUse bool
	err             error // the typed error of the last rejection
}

func (p *hostKeyPolicy) load() (ssh.HostKeyCallback, error) {
	var files []string
	for _, f := range append([]string{p.file}, p.also...) {
		if _, err := os.Stat(f); err == nil {
			files = append(files, filepath.Clean(f))
		}
	}
	if len(files) == 0 {
		return func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }, nil
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts: %w", err)
	}
	return cb, nil
}

// callback is the ssh.HostKeyCallback; known are the key algorithms
// known_hosts has for addr, to offer only those (x/crypto prefers ECDSA, a
// host known by its ed25519 key would otherwise look changed).
func (p *hostKeyPolicy) callback(addr string) (cb ssh.HostKeyCallback, known []string, err error) {
	db, err := p.load()
	if err != nil {
		return nil, nil, err
	}
	known = knownAlgorithms(db, addr)
	cb = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := db(hostname, remote, key)
		var kerr *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &kerr) && len(kerr.Want) > 0:
			p.err = &HostKeyChangedError{Addr: addr, Key: key, Want: kerr.Want}
		case errors.As(err, &kerr) && p.trustOnFirstUse:
			if err := appendKnownHost(p.file, addr, key); err != nil {
				p.err = err
				return err
			}
			return nil
		case errors.As(err, &kerr):
			p.err = &UnknownHostKeyError{Addr: addr, KnownHosts: p.file, Key: key}
			if len(p.also) > 0 {
				p.err.(*UnknownHostKeyError).AddTo = p.also[0]
			}
		default:
			p.err = fmt.Errorf("check host key of %s: %w", addr, err)
		}
		return p.err
	}
	return cb, known, nil
}

func knownAlgorithms(db ssh.HostKeyCallback, addr string) []string {
	_, probe, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(probe)
	if err != nil {
		return nil
	}
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	var kerr *knownhosts.KeyError
	if err := db(addr, &net.TCPAddr{IP: net.IPv4zero, Port: n}, signer.PublicKey()); !errors.As(err, &kerr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range kerr.Want {
		var add []string
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		default:
			add = []string{t}
		}
		for _, a := range add {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func appendKnownHost(file, addr string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("save host key: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("save host key: %w", err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("save host key: %w", err)
	}
	return f.Close()
}

// AuthError is a host that refused every key forgelab offered.
type AuthError struct {
	Addr, User string
	Keys       []string // what was offered: "KEYFILE (SHA256:...)" or "agent key ..."
	Err        error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("login as %s@%s refused: the host accepts none of the keys offered (%s); "+
		"add the public key to ~%s/.ssh/authorized_keys on the host, or set the right key in the lab file (%v)",
		e.User, e.Addr, strings.Join(e.Keys, ", "), e.User, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// UnreachableError is a host whose SSH port could not be reached.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s: %v (is the host up, its address right, and sshd listening on that port?)", e.Addr, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// sshAuth gathers the key file and agent keys for a login, and describes
// them (fingerprints only) for error messages.
func sshAuth(keyPath string, useAgent bool) (methods []ssh.AuthMethod, desc []string, keySigner ssh.Signer, closeFn func(), err error) {
	closeFn = func() {}
	if keyPath != "" {
		s, err := LoadSigner(expandHome(keyPath))
		if err != nil {
			return nil, nil, nil, nil, err
		}
		keySigner = s
		methods = append(methods, ssh.PublicKeys(s))
		desc = append(desc, fmt.Sprintf("%s (%s)", keyPath, ssh.FingerprintSHA256(s.PublicKey())))
	}
	if useAgent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, nil, nil, nil, errors.New("use_agent is set but SSH_AUTH_SOCK is not: start ssh-agent and add the key (ssh-add)")
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("ssh agent at SSH_AUTH_SOCK: %w", err)
		}
		ag := agent.NewClient(conn)
		keys, err := ag.List()
		if err != nil {
			conn.Close()
			return nil, nil, nil, nil, fmt.Errorf("ssh agent: %w", err)
		}
		for _, k := range keys {
			desc = append(desc, fmt.Sprintf("agent key %s (%s)", k.Comment, ssh.FingerprintSHA256(k)))
		}
		methods = append(methods, ssh.PublicKeysCallback(ag.Signers))
		closeFn = func() { conn.Close() }
	}
	if len(methods) == 0 {
		return nil, nil, nil, nil, errors.New("no key: set a key file or use_agent")
	}
	return methods, desc, keySigner, closeFn, nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

// dialConfig is Dial with a caller's ClientConfig (several auth methods,
// chosen host key algorithms), turning failures into typed errors.
func dialConfig(ctx context.Context, addr string, cfg *ssh.ClientConfig, signer ssh.Signer, policy *hostKeyPolicy, keys []string, timeout time.Duration) (*Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &UnreachableError{Addr: addr, Err: err}
	}
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		switch {
		case policy.err != nil:
			return nil, policy.err
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, &AuthError{Addr: addr, User: cfg.User, Keys: keys, Err: err}
		case ctx.Err() != nil:
			return nil, &UnreachableError{Addr: addr, Err: fmt.Errorf("no SSH handshake within %s: %w", timeout, err)}
		default:
			return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
		}
	}
	conn.SetDeadline(time.Time{})
	return &Client{Client: ssh.NewClient(cc, chans, reqs), Target: Target{Addr: addr, User: cfg.User, Signer: signer, HostKey: cfg.HostKeyCallback}}, nil
}

// Target says how to reach h with Dial, as ConnectPhysical does but
// without trusting on first use: for commands run on a host already
// adopted (its key is known by then). An agent connection it opens stays
// open for the life of the process.
func (h PhysicalHost) Target() (Target, error) {
	methods, _, signer, _, err := sshAuth(h.KeyPath, h.UseAgent)
	if err != nil {
		return Target{}, fmt.Errorf("host %s: %w", h.Name, err)
	}
	policy := &hostKeyPolicy{file: h.KnownHosts, also: h.AlsoKnownHosts}
	cb, algos, err := policy.callback(h.addr())
	if err != nil {
		return Target{}, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return Target{Addr: h.addr(), User: h.User, Signer: signer, Auth: methods, HostKey: cb, HostKeyAlgorithms: algos}, nil
}

package provision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// PhysicalHost is a machine forgelab adopts over SSH instead of booting.
type PhysicalHost struct {
	Name     string // host name in the lab
	Lab      string // lab name; names the state directory on the host
	Address  string // host name or IP address
	Port     int    // default 22
	User     string // login user: root, or a user with passwordless sudo
	KeyPath  string // private key file ("~/" is expanded)
	UseAgent bool   // also offer the keys of the agent at SSH_AUTH_SOCK

	// KnownHosts is the lab's known_hosts file. The host's key must be in
	// it, unless TrustOnFirstUse allows saving the key seen on first
	// contact there.
	KnownHosts      string
	TrustOnFirstUse bool
	// AlsoKnownHosts are more known_hosts files to verify the host key
	// against (the user's ~/.ssh/known_hosts); forgelab never writes them.
	AlsoKnownHosts []string

	// StateDir on the host holds the originals of files forgelab replaces,
	// until Undo puts them back. Default /var/lib/forgelab-adopted/<Lab>.
	StateDir       string
	MinFreeBytes   int64         // free space wanted on /; default 100 MiB
	RequireSystemd bool          // refuse a host without systemd (otherwise services are supervised by forgelab)
	ConnectTimeout time.Duration // TCP connect plus SSH handshake; default 10s
}

func (h PhysicalHost) addr() string {
	port := h.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(h.Address, strconv.Itoa(port))
}

func (h PhysicalHost) validate() error {
	var problems []string
	if h.Name == "" {
		problems = append(problems, "no name")
	}
	if h.Lab == "" {
		problems = append(problems, "no lab name")
	}
	if h.Address == "" {
		problems = append(problems, "no address")
	}
	if h.User == "" {
		problems = append(problems, "no user")
	}
	if h.KeyPath == "" && !h.UseAgent {
		problems = append(problems, "no key (set key, or use_agent = true)")
	}
	if h.KnownHosts == "" {
		problems = append(problems, "no known_hosts file")
	}
	if h.StateDir != "" {
		if _, err := cleanDst(h.StateDir); err != nil {
			problems = append(problems, "state dir: "+err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("physical host %q: %s", h.Name, strings.Join(problems, "; "))
	}
	return nil
}

// ConnectPhysical opens an SSH connection to h, verifying its host key
// against h.KnownHosts. Errors are typed: *UnknownHostKeyError (with the
// fingerprint and how to trust it), *HostKeyChangedError, *AuthError,
// *UnreachableError.
func ConnectPhysical(ctx context.Context, h PhysicalHost) (*Client, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	methods, keys, signer, closeAgent, err := sshAuth(h.KeyPath, h.UseAgent)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	defer closeAgent()
	policy := &hostKeyPolicy{file: h.KnownHosts, also: h.AlsoKnownHosts, trustOnFirstUse: h.TrustOnFirstUse}
	cb, algos, err := policy.callback(h.addr())
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	timeout := h.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cfg := &ssh.ClientConfig{
		User:              h.User,
		Auth:              methods,
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		Timeout:           timeout,
	}
	c, err := dialConfig(ctx, h.addr(), cfg, signer, policy, keys, timeout)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return c, nil
}

// Check is one prerequisite of an adopted host.
type Check struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Required bool   `json:"required"`
	Detail   string `json:"detail,omitempty"`
	Fix      string `json:"fix,omitempty"`
}

// MissingError lists every required prerequisite a host lacks.
type MissingError struct {
	Host    string
	Addr    string
	Missing []Check
}

func (e *MissingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s (%s) lacks what forgelab needs:", e.Host, e.Addr)
	for _, c := range e.Missing {
		fmt.Fprintf(&b, "\n  - %s: %s", c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(&b, " (fix: %s)", c.Fix)
		}
	}
	return b.String()
}

// Adopted is a physical host forgelab works on: the connection, what it
// found there, and the journal of what it changed.
type Adopted struct {
	Name     string
	Client   *Client
	Journal  *Journal
	Checks   []Check
	Systemd  bool
	StateDir string
}

// Adopt connects to a physical host, checks it has what forgelab needs
// (sudo -n unless root, tc, ip, coreutils, free space on /, systemd when
// required) and reports every missing one at once. j continues the journal
// of an earlier adoption (from the lab's state); nil starts a new one. Adopt
// itself changes nothing on the host.
func Adopt(ctx context.Context, h PhysicalHost, j *Journal) (*Adopted, error) {
	c, err := ConnectPhysical(ctx, h)
	if err != nil {
		return nil, err
	}
	checks, systemd, err := checkHost(ctx, c, h)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("host %s: check prerequisites: %w", h.Name, err)
	}
	var missing []Check
	for _, ch := range checks {
		if ch.Required && !ch.OK {
			missing = append(missing, ch)
		}
	}
	if len(missing) > 0 {
		c.Close()
		return nil, &MissingError{Host: h.Name, Addr: h.addr(), Missing: missing}
	}
	if j == nil {
		j = NewJournal(h.Name)
	}
	stateDir := h.StateDir
	if stateDir == "" {
		stateDir = path.Join("/var/lib/forgelab-adopted", h.Lab)
	}
	return &Adopted{Name: h.Name, Client: c, Journal: j, Checks: checks, Systemd: systemd, StateDir: stateDir}, nil
}

// DeployOptions are the options for deploying to this host: journaled,
// originals kept under StateDir/backup.
func (a *Adopted) DeployOptions(facts *Facts) DeployOptions {
	return DeployOptions{Journal: a.Journal, BackupDir: path.Join(a.StateDir, "backup"), Facts: facts}
}

// ServiceOptions are the options for services on this host.
func (a *Adopted) ServiceOptions() ServiceOptions {
	return ServiceOptions{Host: a.Name, Journal: a.Journal}
}

// Undo takes back everything in the journal (see Undo).
func (a *Adopted) Undo(ctx context.Context) error { return Undo(ctx, a.Client, a.Journal) }

// Close closes the connection.
func (a *Adopted) Close() error { return a.Client.Close() }

const checkScript = `PATH="$PATH:/usr/sbin:/sbin"
echo "user=$(id -un)"
if [ "$(id -u)" = 0 ]; then echo sudo=root
elif ! command -v sudo >/dev/null 2>&1; then echo sudo=absent
elif sudo -n true 2>/dev/null; then echo sudo=ok
else echo sudo=denied
fi
for t in tc ip sha256sum xargs setsid timeout bash curl; do
	if command -v "$t" >/dev/null 2>&1; then echo "have_$t=yes"; else echo "have_$t=no"; fi
done
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then echo systemd=yes; else echo systemd=no; fi
df -Pk / 2>/dev/null | awk 'NR==2 {print "free_kib=" $4}'
`

func checkHost(ctx context.Context, c *Client, h PhysicalHost) ([]Check, bool, error) {
	out, err := c.Output(ctx, "sh -c "+ShellQuote(checkScript))
	if err != nil {
		return nil, false, err
	}
	kv := parseKV(string(out))
	return evaluateChecks(kv, h), kv["systemd"] == "yes", nil
}

// evaluateChecks turns the answers of checkScript into checks.
func evaluateChecks(kv map[string]string, h PhysicalHost) []Check {
	var checks []Check
	user := kv["user"]
	sudo := Check{Name: "sudo", Required: true, OK: kv["sudo"] == "root" || kv["sudo"] == "ok"}
	switch kv["sudo"] {
	case "root":
		sudo.Detail = "logged in as root"
	case "ok":
		sudo.Detail = "passwordless sudo works"
	case "absent":
		sudo.Detail = fmt.Sprintf("%s is not root and sudo is not installed", user)
		sudo.Fix = fmt.Sprintf("install sudo and allow %s: echo '%s ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/forgelab", user, user)
	default:
		sudo.Detail = fmt.Sprintf("%s is not root and `sudo -n true` fails (a password is needed, or no sudo rights)", user)
		sudo.Fix = fmt.Sprintf("echo '%s ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/forgelab, or log in as root", user)
	}
	checks = append(checks, sudo)
	tools := []struct {
		name, pkg, why string
		required       bool
	}{
		{"tc", "iproute2", "shapes links of this host", true},
		{"ip", "iproute2", "reads interfaces and addresses", true},
		{"sha256sum", "coreutils", "compares deployed files", true},
		{"xargs", "findutils", "compares deployed files", true},
		{"setsid", "util-linux", "supervises services without systemd", true},
		{"timeout", "coreutils", "bounds workloads and readiness checks", true},
		{"bash", "bash", "tcp:// and http:// readiness checks", false},
		{"curl", "curl", "http(s):// readiness checks and the coordination service from shell", false},
	}
	for _, t := range tools {
		ch := Check{Name: t.name, Required: t.required, OK: kv["have_"+t.name] == "yes", Detail: t.why}
		if !ch.OK {
			ch.Detail = "not installed; " + t.why
			ch.Fix = "apt-get install " + t.pkg
		}
		checks = append(checks, ch)
	}
	sd := Check{Name: "systemd", Required: h.RequireSystemd, OK: kv["systemd"] == "yes"}
	if sd.OK {
		sd.Detail = "services run as systemd units"
	} else {
		sd.Detail = "systemd is not the init system here; services run under forgelab's own supervisor"
		if h.RequireSystemd {
			sd.Detail = "systemd is not the init system here"
		}
	}
	checks = append(checks, sd)
	minFree := h.MinFreeBytes
	if minFree <= 0 {
		minFree = 100 << 20
	}
	freeKiB, err := strconv.ParseInt(kv["free_kib"], 10, 64)
	free := Check{Name: "free space on /", Required: true, OK: err == nil && freeKiB*1024 >= minFree}
	switch {
	case err != nil:
		free.Detail = "df -Pk / gave no answer"
	case free.OK:
		free.Detail = fmt.Sprintf("%d MiB free", freeKiB/1024)
	default:
		free.Detail = fmt.Sprintf("%d MiB free, %d MiB wanted", freeKiB/1024, minFree>>20)
		free.Fix = "free space on /, or lower min_free in the lab file"
	}
	checks = append(checks, free)
	return checks
}

// IsHostKeyError reports whether err is a host key that is unknown or
// changed: retrying does not help, the user must decide.
func IsHostKeyError(err error) bool {
	var unknown *UnknownHostKeyError
	return errors.As(err, &unknown) || errors.Is(err, ErrHostKey)
}

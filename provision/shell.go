package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// ShellQuote quotes s as one word for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isRoot reports whether c logs in as root. Everything forgelab changes on a
// host needs root; other users go through `sudo -n`, which Adopt checks.
func isRoot(c *Client) bool { return c.Target.User == "root" }

// asRoot wraps a shell command so it runs as root: unchanged for root
// logins, through `sudo -n sh -c` otherwise (so the whole pipeline is
// covered, not just its first word).
func asRoot(c *Client, cmd string) string {
	if isRoot(c) {
		return cmd
	}
	return "sudo -n sh -c " + ShellQuote(cmd)
}

// AsRoot is cmd run as root: as is for root, through `sudo -n` otherwise.
func AsRoot(c *Client, cmd string) string { return asRoot(c, cmd) }

// RootOutput runs cmd as root (through sudo unless the login user is
// root) and returns stdout; a non-zero exit is an *ExitError carrying
// stderr.
func RootOutput(ctx context.Context, c *Client, cmd string) ([]byte, error) {
	return rootOutput(ctx, c, cmd)
}

// rootOutput runs cmd as root and returns stdout; a non-zero exit is an
// *ExitError carrying stderr.
func rootOutput(ctx context.Context, c *Client, cmd string) ([]byte, error) {
	return c.Output(ctx, asRoot(c, cmd))
}

// rootScript runs a multi-line sh script as root, passing it on stdin so its
// length is not bounded by the SSH exec request.
func rootScript(ctx context.Context, c *Client, script string) ([]byte, error) {
	var out, errb strings.Builder
	cmd := asRoot(c, "sh -s")
	code, err := c.Run(ctx, cmd, strings.NewReader(script), &out, &errb)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return []byte(out.String()), &ExitError{Cmd: firstLine(script), Code: code, Stderr: errb.String()}
	}
	return []byte(out.String()), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// exported matches an assignment that envExports writes, to the end of
// its line (so a value quoted twice, inside sh -c '...', goes too).
var exported = regexp.MustCompile(`\bexport ([A-Za-z_][A-Za-z0-9_]*)=[^\n]*`)

// Redact hides the values a command exports (workload and service
// environments often hold secrets) before the command goes into an error
// message or a log.
func Redact(cmd string) string {
	return exported.ReplaceAllString(cmd, "export $1=<redacted>")
}

// envExports renders env as sorted `export K='V'` lines for a sh script.
func envExports(env map[string]string) (string, error) {
	keys := make([]string, 0, len(env))
	for k := range env {
		if !validEnvName(k) {
			return "", fmt.Errorf("environment variable name %q: use letters, digits and _", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s\n", k, ShellQuote(env[k]))
	}
	return b.String(), nil
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// exitCode returns the remote exit status carried by err, or -1.
func exitCode(err error) int {
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

// gate passes writes to w until closed, then drops them. Client.Run returns
// on cancellation while the session may still be copying output; writing
// through a gate that the caller closes keeps those late writes away from
// buffers and files the caller is already reading or has closed.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

// close waits for a write in progress and drops every later one.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

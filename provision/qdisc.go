package provision

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

var devName = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}$`)

// replayable root qdiscs: classless, and `tc qdisc show` prints parameters
// that `tc qdisc add` reads back.
var replayable = map[string]bool{"netem": true, "tbf": true, "fq_codel": true, "fq": true, "sfq": true, "cake": true, "codel": true, "pie": true}

// ReplaceQdisc sets the root qdisc of dev on the host to spec (tc's words
// after "root", e.g. "netem delay 50ms loss 1%"). The first time forgelab
// touches dev, the qdisc there is recorded in j (`tc qdisc show dev DEV`),
// and Undo puts it back. A root qdisc forgelab could not put back exactly
// (classful, with children or filters of its own) is refused before
// anything changes.
func ReplaceQdisc(ctx context.Context, c *Client, j *Journal, dev, spec string) error {
	if !devName.MatchString(dev) {
		return fmt.Errorf("qdisc: %q is not an interface name", dev)
	}
	words := strings.Fields(spec)
	if len(words) == 0 {
		return fmt.Errorf("qdisc on %s: empty spec", dev)
	}
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = ShellQuote(w)
	}
	if !hasQdiscChange(j, dev) {
		prior, err := rootOutput(ctx, c, "tc qdisc show dev "+ShellQuote(dev))
		if err != nil {
			return fmt.Errorf("qdisc on %s: %w", dev, err)
		}
		if _, err := qdiscRestoreCommand(dev, string(prior)); err != nil {
			return err
		}
		if err := j.record(Change{Kind: ChangeQdisc, Dev: dev, Prior: string(prior)}); err != nil {
			return err
		}
	}
	d := ShellQuote(dev)
	args := strings.Join(quoted, " ")
	// replace fails when the kind changes under a fixed handle: then delete and add.
	cmd := fmt.Sprintf("tc qdisc replace dev %s root %s 2>/dev/null || { tc qdisc del dev %s root 2>/dev/null; tc qdisc add dev %s root %s; }", d, args, d, d, args)
	if _, err := rootOutput(ctx, c, cmd); err != nil {
		return fmt.Errorf("qdisc on %s: %w", dev, err)
	}
	return nil
}

func hasQdiscChange(j *Journal, dev string) bool {
	if j == nil {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, ch := range j.Changes {
		if ch.Kind == ChangeQdisc && ch.Dev == dev {
			return true
		}
	}
	return false
}

// qdiscLine is one line of `tc qdisc show`.
type qdiscLine struct {
	kind, handle string
	root         bool
	params       []string // after "refcnt N"
}

func parseQdiscs(show string) []qdiscLine {
	var out []qdiscLine
	for _, line := range strings.Split(show, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "qdisc" {
			continue
		}
		q := qdiscLine{kind: f[1], handle: f[2]}
		rest := f[3:]
		switch {
		case rest[0] == "root":
			q.root, rest = true, rest[1:]
		case rest[0] == "parent" && len(rest) > 1:
			rest = rest[2:]
		}
		if len(rest) >= 2 && rest[0] == "refcnt" {
			rest = rest[2:]
		}
		q.params = rest
		out = append(out, q)
	}
	return out
}

// qdiscRestoreCommand returns the shell command that puts back the root
// qdisc described by prior (`tc qdisc show dev DEV`), or an error when it
// cannot be put back exactly. Ingress and clsact qdiscs are never touched,
// so they are not part of the restore.
func qdiscRestoreCommand(dev, prior string) (string, error) {
	d := ShellQuote(dev)
	var mine []qdiscLine
	for _, q := range parseQdiscs(prior) {
		if q.kind == "ingress" || q.kind == "clsact" {
			continue
		}
		mine = append(mine, q)
	}
	allDefault := true
	for _, q := range mine {
		if q.handle != "0:" {
			allDefault = false
		}
	}
	// The kernel's default (noqueue, pfifo_fast, mq, fq_codel from
	// net.core.default_qdisc: all with handle 0:) comes back when the root
	// qdisc is deleted; deleting the default itself is refused, harmlessly.
	del := fmt.Sprintf("tc qdisc del dev %s root 2>/dev/null || true", d)
	if allDefault {
		return del, nil
	}
	if len(mine) == 1 && mine[0].root && replayable[mine[0].kind] {
		q := mine[0]
		args := []string{ShellQuote(q.handle), ShellQuote(q.kind)}
		for _, p := range q.params {
			args = append(args, ShellQuote(p))
		}
		return fmt.Sprintf("tc qdisc del dev %s root 2>/dev/null; tc qdisc add dev %s root handle %s", d, d, strings.Join(args, " ")), nil
	}
	desc := "qdiscs"
	if len(mine) > 0 {
		desc = mine[0].kind + " " + mine[0].handle
	}
	return "", fmt.Errorf("%s has its own root qdisc (%s) that forgelab could not restore exactly; "+
		"forgelab leaves it alone: remove it (tc qdisc del dev %s root) or shape another interface", dev, desc, dev)
}

// AddNetdev creates a network device on a host forgelab does not own:
// it refuses a name that exists (it would not be forgelab's to remove),
// records the device in j, then runs create (a root sh script that makes
// dev and configures it). Undo deletes the device, and with it its
// addresses and qdiscs.
func AddNetdev(ctx context.Context, c *Client, j *Journal, dev, create string) error {
	if !devName.MatchString(dev) {
		return fmt.Errorf("netdev %q is not an interface name", dev)
	}
	q := ShellQuote(dev)
	check := fmt.Sprintf("PATH=\"$PATH:/usr/sbin:/sbin\"\nif ip link show dev %s >/dev/null 2>&1; then echo \"a device named %s exists already on this host, and it is not forgelab's\" >&2; exit 1; fi\n", q, dev)
	if _, err := rootScript(ctx, c, check); err != nil {
		return fmt.Errorf("netdev %s: %w", dev, err)
	}
	if err := j.record(Change{Kind: ChangeNetdev, Dev: dev}); err != nil {
		return err
	}
	if _, err := rootScript(ctx, c, "PATH=\"$PATH:/usr/sbin:/sbin\"\nset -e\n"+create); err != nil {
		return fmt.Errorf("netdev %s: %w", dev, err)
	}
	return nil
}

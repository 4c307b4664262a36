package provision

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// remoteSums runs one sha256sum over paths on the host and returns path ->
// hex sum for those it could read.
func remoteSums(ctx context.Context, c *Client, paths []string) (map[string]string, error) {
	var in bytes.Buffer
	for _, p := range paths {
		in.WriteString(p)
		in.WriteByte(0)
	}
	var out, errb bytes.Buffer
	// xargs exits 123 when a file vanished meanwhile: such files have no
	// sum and are sent; any other failure is an error.
	code, err := c.Run(ctx, asRoot(c, "xargs -0 -r sha256sum --"), &in, &out, &errb)
	if err != nil {
		return nil, fmt.Errorf("sha256sum on host: %w", err)
	}
	if code != 0 && code != 123 {
		return nil, fmt.Errorf("sha256sum on host: exit status %d: %s", code, strings.TrimSpace(errb.String()))
	}
	return parseSums(out.String()), nil
}

// parseSums reads sha256sum's output. GNU coreutils writes a name holding a
// backslash or newline escaped, with a leading backslash on the line.
func parseSums(out string) map[string]string {
	sums := make(map[string]string)
	for _, line := range strings.Split(out, "\n") {
		escaped := strings.HasPrefix(line, `\`)
		if escaped {
			line = line[1:]
		}
		if len(line) < 67 || (line[64:66] != "  " && line[64:66] != " *") {
			continue
		}
		name := line[66:]
		if escaped {
			name = strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\r`, "\r").Replace(name)
		}
		sums[name] = line[:64]
	}
	return sums
}

// resolveOwner turns "user[:group]" into numeric ids on the host.
func resolveOwner(ctx context.Context, c *Client, owner string) (int, int, error) {
	user, group, err := splitOwner(owner)
	if err != nil {
		return 0, 0, err
	}
	script := fmt.Sprintf(`u=%s g=%s
uid=$(id -u -- "$u" 2>/dev/null) || { echo "no user $u on the host" >&2; exit 3; }
if [ -n "$g" ]; then
	gid=$(getent group "$g" | cut -d: -f3)
	[ -n "$gid" ] || { echo "no group $g on the host" >&2; exit 4; }
else
	gid=$(id -g -- "$u")
fi
echo "$uid $gid"
`, ShellQuote(user), ShellQuote(group))
	out, err := c.Output(ctx, "sh -c "+ShellQuote(script))
	if err != nil {
		return 0, 0, fmt.Errorf("owner %q: %w", owner, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("owner %q: unexpected answer %q", owner, out)
	}
	uid, err1 := strconv.Atoi(f[0])
	gid, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("owner %q: unexpected answer %q", owner, out)
	}
	return uid, gid, nil
}

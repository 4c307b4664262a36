package images

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// builder runs the steps of one build: progress lines for the user, tool
// output into the build log.
type builder struct {
	ctx      context.Context
	progress io.Writer
	log      *os.File
	logPath  string
}

func (b *builder) step(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(b.progress, msg)
	fmt.Fprintf(b.log, "\n==> %s %s\n", time.Now().Format(time.TimeOnly), msg)
}

// run runs a tool in its own process group with its output going to the
// build log. Cancelling the context sends SIGTERM to the whole group (so
// debootstrap's own exit traps run), then SIGKILL after a grace period;
// whatever is left of the group is killed when the leader exits.
func (b *builder) run(env []string, name string, args ...string) error {
	return b.runIn(nil, env, name, args...)
}

// runIn is run with the given standard input.
func (b *builder) runIn(stdin io.Reader, env []string, name string, args ...string) error {
	if err := b.ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "$ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.CommandContext(b.ctx, name, args...)
	cmd.Stdin = stdin
	cmd.Stdout = b.log
	cmd.Stderr = b.log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftovers, if any
	}
	if err != nil {
		if cerr := b.ctx.Err(); cerr != nil {
			return fmt.Errorf("%s: %w", name, cerr)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// logTail returns the last n lines of a file, for error messages.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 64<<10 {
		f.Seek(-64<<10, io.SeekEnd)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// mountsUnder lists the mount points at or below dir (deepest first), as the
// kernel reports them for this process.
func mountsUnder(dir string) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeTree unmounts anything still mounted below dir and removes it. It
// refuses to remove anything while a mount remains, so a bind mount of a
// host directory (debootstrap may bind /dev) is never emptied through it.
func removeTree(dir string) error {
	for attempt := 0; attempt < 3; attempt++ {
		mps, err := mountsUnder(dir)
		if err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
		if len(mps) == 0 {
			return os.RemoveAll(dir)
		}
		for _, mp := range mps {
			if err := syscall.Unmount(mp, 0); err != nil {
				syscall.Unmount(mp, syscall.MNT_DETACH)
			}
		}
	}
	mps, _ := mountsUnder(dir)
	if len(mps) == 0 {
		return os.RemoveAll(dir)
	}
	return fmt.Errorf("not removing %s: still mounted below it: %s (unmount them, then delete it)", dir, strings.Join(mps, ", "))
}

// missingTools returns the tools (of name -> Debian package) not in PATH.
func missingTools(tools map[string]string) []string {
	var miss []string
	for t, pkg := range tools {
		if _, err := exec.LookPath(t); err != nil {
			miss = append(miss, fmt.Sprintf("%s (package %s)", t, pkg))
		}
	}
	sort.Strings(miss)
	return miss
}

var errNotRoot = errors.New("needs root")

package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// RegistryFile lists, one path a line, every state directory a forgelab
// has created labs in on this machine. Lab objects (domains, networks,
// netdevs) are machine-wide while a lab's state lives in one state dir;
// `forgelab gc` reads this list so that a lab of another state dir is not
// taken for an orphan.
const RegistryFile = "state-dirs"

// DefaultRegistry is the machine's registry: in the default state dir
// (without FORGELAB_STATE_DIR, which would make it per state dir).
func DefaultRegistry() string {
	if os.Geteuid() == 0 {
		return filepath.Join("/var/lib/forgelab", RegistryFile)
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "forgelab", RegistryFile)
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "forgelab", RegistryFile)
}

// Register adds dir to the registry at path unless it is there already.
func Register(path, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("register state dir %s in %s: %w", dir, path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("register state dir %s in %s: %w", dir, path, err)
	}
	defer f.Close()
	// Two creates in new state dirs at once must not lose a line.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() == dir {
			return nil
		}
	}
	if _, err := f.WriteString(dir + "\n"); err != nil {
		return fmt.Errorf("register state dir %s in %s: %w", dir, path, err)
	}
	return f.Sync()
}

// Registered lists the state dirs in the registry at path (none when it
// does not exist yet).
func Registered(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the state dir registry: %w", err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

package labs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Resource kinds a lab records. Destroy undoes them in reverse order.
const (
	KindDir     = "dir"     // a directory forgelab made (removed with its contents)
	KindFile    = "file"    // a file forgelab made
	KindNetwork = "network" // a libvirt network
	KindNetdev  = "netdev"  // a Linux network device (bridge, tap, vxlan)
	KindDomain  = "domain"  // a libvirt domain
	KindProcess = "process" // a background forgelab process (pid file path in Name)
	KindAdopted = "adopted" // a physical host forgelab changed (host name; its journal is in State)
)

// Resource is one thing a lab made; it is recorded before it is made.
type Resource struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Lab phases.
const (
	PhaseCreating   = "creating"
	PhaseReady      = "ready"
	PhaseFailed     = "failed"
	PhaseDestroying = "destroying"
)

// State is a lab's record on disk: enough for inspect, ssh and destroy to
// work from any process, even after the creating one was killed.
type State struct {
	Lab          string                `json:"lab"`
	ID           string                `json:"id"`
	File         string                `json:"file"`
	Phase        string                `json:"phase"`
	Error        string                `json:"error,omitempty"`
	Created      time.Time             `json:"created"`
	Accel        string                `json:"accel,omitempty"`
	AccelReason  string                `json:"accel_reason,omitempty"`
	Fabric       string                `json:"fabric,omitempty"`
	FabricReason string                `json:"fabric_reason,omitempty"`
	User         string                `json:"user"`
	Plan         *Plan                 `json:"plan,omitempty"`
	Resources    []Resource            `json:"resources"`
	Hosts        map[string]*HostState `json:"hosts,omitempty"`
	// Adopted physical hosts and the journal of what forgelab changed on
	// each (physical.go); Coord is the lab's coordination service (software.go).
	Adopted map[string]*AdoptedHost `json:"adopted,omitempty"`
	Coord   *CoordState             `json:"coord,omitempty"`
}

// HostState is what create learned about one host.
type HostState struct {
	Ready    bool          `json:"ready"`
	BootTime time.Duration `json:"boot_time,omitempty"`
	BootCPU  time.Duration `json:"boot_cpu,omitempty"`
}

// Store is the state directory: images/, labs/<name>/, runs/.
type Store struct {
	Dir string
}

// DefaultStateDir is /var/lib/forgelab for root, $XDG_STATE_HOME/forgelab
// otherwise; FORGELAB_STATE_DIR overrides both.
func DefaultStateDir() string {
	if d := os.Getenv("FORGELAB_STATE_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/forgelab"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "forgelab")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "forgelab")
}

func (s *Store) ImagesDir() string            { return filepath.Join(s.Dir, "images") }
func (s *Store) LabDir(name string) string    { return filepath.Join(s.Dir, "labs", name) }
func (s *Store) statePath(name string) string { return filepath.Join(s.LabDir(name), "state.json") }

// Labs lists the names of labs with saved state.
func (s *Store) Labs() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.Dir, "labs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if _, err := os.Stat(s.statePath(e.Name())); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// ErrNoLab is returned for a lab without saved state.
var ErrNoLab = errors.New("no such lab")

// Load reads a lab's state.
// LabsUsingImage names the labs whose hosts boot from image (their disks
// are overlays on it).
func (s *Store) LabsUsingImage(image string) []string {
	names, _ := s.Labs()
	var users []string
	for _, n := range names {
		st, err := s.Load(n)
		if err != nil || st.Plan == nil {
			continue
		}
		for _, h := range st.Plan.Hosts {
			if h.Image == image {
				users = append(users, n)
				break
			}
		}
	}
	return users
}

func (s *Store) Load(name string) (*State, error) {
	data, err := os.ReadFile(s.statePath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %q: %w (forgelab list shows the labs)", name, ErrNoLab)
	}
	if err != nil {
		return nil, fmt.Errorf("read state of lab %s: %w", name, err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state of lab %s is damaged (%s): %w", name, s.statePath(name), err)
	}
	return &st, nil
}

// Recorder saves a lab's state after every change, so a kill at any moment
// leaves a record of everything that may exist.
type Recorder struct {
	mu    sync.Mutex
	path  string
	state *State
}

func (s *Store) Recorder(st *State) *Recorder {
	return &Recorder{path: s.statePath(st.Lab), state: st}
}

// Record adds a resource and saves, before the caller makes it.
func (r *Recorder) Record(kind, name string) error {
	return r.Update(func(st *State) {
		for _, res := range st.Resources {
			if res.Kind == kind && res.Name == name {
				return
			}
		}
		st.Resources = append(st.Resources, Resource{Kind: kind, Name: name})
	})
}

// Forget drops a resource that is gone.
func (r *Recorder) Forget(kind, name string) error {
	return r.Update(func(st *State) {
		out := st.Resources[:0]
		for _, res := range st.Resources {
			if !(res.Kind == kind && res.Name == name) {
				out = append(out, res)
			}
		}
		st.Resources = out
	})
}

// Update changes the state under the lock and saves it.
func (r *Recorder) Update(f func(*State)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.state)
	return r.save()
}

// Snapshot returns a copy of the current state's resource list.
func (r *Recorder) Resources() []Resource {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Resource(nil), r.state.Resources...)
}

func (r *Recorder) save() error {
	data, err := json.MarshalIndent(r.state, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("save state: %w", err)
	}
	// fsync before rename: a record must survive a crash of the machine
	// too, or destroy would not know what to remove.
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// Lock takes an exclusive lock on a lab so that two forgelab processes do
// not create or destroy the same lab at once. The lock file lives beside
// the lab directory, so removing the lab does not remove a held lock.
func (s *Store) Lock(name string) (unlock func(), err error) {
	dir := filepath.Join(s.Dir, "labs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "."+name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lab %s is busy: another forgelab process is creating or destroying it", name)
	}
	return func() {
		os.Remove(path)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

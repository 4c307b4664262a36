package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/provision"
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
	KindFabricd = "fabricd" // the userspace fabric daemon (Name: the lab dir)
	KindShaper  = "shaper"  // kernel or guest shaping set up on links (Name: the fabric)
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
	// PhaseBroken is never saved: List reports it for a lab whose state
	// cannot be read.
	PhaseBroken = "broken"
)

// State is a lab's record on disk: enough for inspect, ssh, the control
// path and destroy to work from any process, even after the creating one
// was killed.
type State struct {
	Lab          string    `json:"lab"`
	ID           string    `json:"id"`
	File         string    `json:"file"`
	Phase        string    `json:"phase"`
	Error        string    `json:"error,omitempty"`
	Created      time.Time `json:"created"`
	Accel        string    `json:"accel,omitempty"`
	AccelReason  string    `json:"accel_reason,omitempty"`
	Fabric       string    `json:"fabric,omitempty"`
	FabricReason string    `json:"fabric_reason,omitempty"`
	User         string    `json:"user"`
	// Spec is the lab file as create read it: redeploy and logs use it,
	// so edits to the file after create do not leak into a running lab.
	Spec      *spec.Spec            `json:"spec,omitempty"`
	Plan      *plan.Plan            `json:"plan,omitempty"`
	Resources []Resource            `json:"resources"`
	Hosts     map[string]*HostState `json:"hosts,omitempty"`
	// Steps is how long each step of create took, in order.
	Steps []StepTime `json:"steps,omitempty"`
	// Adopted physical hosts and the journal of what forgelab changed on
	// each; Coord is the lab's coordination service.
	Adopted map[string]*AdoptedHost `json:"adopted,omitempty"`
	Coord   *CoordState             `json:"coord,omitempty"`
}

// HostState is what create learned about one host.
type HostState struct {
	Ready    bool          `json:"ready"`
	BootTime time.Duration `json:"boot_time,omitempty"`
	BootCPU  time.Duration `json:"boot_cpu,omitempty"`
}

// StepTime is one step of create and how long it took.
type StepTime struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
}

// AdoptedHost is what the state keeps about an adopted physical host.
type AdoptedHost struct {
	Addr       string             `json:"addr"`             // host:port reached
	Local      string             `json:"local,omitempty"`  // this machine's address as the host sees it
	Remote     string             `json:"remote,omitempty"` // the host's address as this machine sees it
	Checks     []provision.Check  `json:"checks,omitempty"`
	Changes    []provision.Change `json:"changes"`
	NextBackup int                `json:"next_backup,omitempty"`
}

// CoordState is the lab's coordination service.
type CoordState struct {
	Port int               `json:"port"`
	URLs map[string]string `json:"urls"` // host -> base URL as that host reaches it
}

// ErrNoLab is returned for a lab without saved state.
var ErrNoLab = errors.New("no such lab")

// Load reads a lab's state.
func (s *Store) Load(name string) (*State, error) {
	l, err := s.Lab(name)
	if err != nil {
		return nil, err
	}
	return s.load(l)
}

func (s *Store) load(l Layout) (*State, error) {
	data, err := os.ReadFile(l.State())
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %q: %w (forgelab list shows the labs)", l.Name, ErrNoLab)
	}
	if err != nil {
		return nil, fmt.Errorf("read state of lab %s: %w", l.Name, err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state of lab %s is damaged (%s): %w", l.Name, l.State(), err)
	}
	return &st, nil
}

// Labs lists the names of labs with saved state.
func (s *Store) Labs() ([]string, error) {
	entries, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.State != nil {
			out = append(out, e.Name)
		}
	}
	return out, nil
}

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
		if slices.ContainsFunc(st.Plan.Hosts, func(h plan.HostPlan) bool { return h.Image == image }) {
			users = append(users, n)
		}
	}
	return users
}

// Entry is one lab as List finds it: its state, or why it cannot be read
// (State nil, Phase PhaseBroken).
type Entry struct {
	Name  string
	State *State
	Err   error
}

// Phase is the lab's phase, or PhaseBroken.
func (e Entry) Phase() string {
	if e.State == nil {
		return PhaseBroken
	}
	return e.State.Phase
}

// List returns every lab directory, sorted by name. A lab whose state
// cannot be read is listed with the reason instead of stopping the list,
// so one damaged lab never hides the others.
func (s *Store) List() ([]Entry, error) {
	ents, err := os.ReadDir(s.labsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list labs in %s: %w", s.labsDir(), err)
	}
	var out []Entry
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue // lock files
		}
		en := Entry{Name: e.Name()}
		l, err := s.Lab(e.Name())
		if err != nil {
			en.Err = fmt.Errorf("%w: not made by forgelab? (remove %s by hand)", err, filepath.Join(s.labsDir(), e.Name()))
			out = append(out, en)
			continue
		}
		en.State, err = s.load(l)
		if errors.Is(err, ErrNoLab) {
			err = fmt.Errorf("no %s in %s: a create was stopped before it saved anything (create the lab again, or remove the directory)", StateFile, l.Dir)
		} else if err != nil {
			err = fmt.Errorf("%w: forgelab cannot destroy it (remove what it made by hand, then %s)", err, l.Dir)
		}
		en.Err = err
		out = append(out, en)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Recorder saves a lab's state after every change, so a kill at any moment
// leaves a record of everything that may exist.
type Recorder struct {
	mu    sync.Mutex
	path  string
	state *State
}

// Recorder returns the recorder of st, which must have a checked name.
func (s *Store) Recorder(st *State) *Recorder {
	return &Recorder{path: s.layout(st.Lab).State(), state: st}
}

// State is the recorded state. Read it only from the goroutine that
// changes it, or through View.
func (r *Recorder) State() *State { return r.state }

// View calls f with the state locked, for reads that race with Update.
func (r *Recorder) View(f func(*State)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.state)
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

// Resources returns a copy of the current state's resource list.
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
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600) // the coordination token
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

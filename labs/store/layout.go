// Package store is forgelab's state directory: where each lab's files
// live (the layout, below), its saved state, its lock and its event log.
//
// The state directory:
//
//	images/                 the image store (package images)
//	labs/.<lab>.lock        a lab's lock (flock); made once, never removed
//	labs/<lab>/             one lab; made first by create, removed last by destroy
//
// A lab's directory (every name is a constant or a method of Layout):
//
//	state.json              the lab's State: plan, resources, phase (fsynced before each object is made)
//	lab.toml                the lab file as created (0600): what `forgelab run` plays
//	run.current             the run folder of the run playing now (removed at its end)
//	events.jsonl            the event log: one JSON object per change to the running lab
//	id_ed25519, .pub        the lab's login key (0600)
//	known_hosts             the host keys forgelab made for its VMs, and physical hosts' keys
//	console-password        the serial-console password (0600)
//	<host>.qcow2            a VM's disk (overlay on its image)
//	<host>-seed.iso         a VM's cloud-init seed
//	<host>-serial.log       a VM's serial console
//	kernel-fabric.json      the kernel shaper's state
//	guest-fabric.json       the guest shaper's state
//	fabric.json, fabric.sock, fabricd.pid, fabricd.log   the userspace fabric daemon (package userspace)
//	coordd.pid, coordd.log  the coordination service
//	workloads/              plan.json, workloadd.pid, workloadd.log, <workload>/<host>/
package store

import (
	"os"
	"path/filepath"

	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/netfabric/userspace"
)

// Names in a lab's directory.
const (
	StateFile        = "state.json"
	LabFile          = "lab.toml"
	RunFile          = "run.current"
	EventsFile       = "events.jsonl"
	KeyFile          = "id_ed25519"
	KnownHostsFile   = "known_hosts"
	PasswordFile     = "console-password"
	KernelFabricFile = "kernel-fabric.json"
	GuestFabricFile  = "guest-fabric.json"
	CoordPIDFile     = "coordd.pid"
	CoordLogFile     = "coordd.log"
	WorkloadsDir     = "workloads"
	WorkloadsPlan    = "plan.json"
	RunnerPIDFile    = "workloadd.pid"
	RunnerLogFile    = "workloadd.log"
	WorkloadStatus   = "status.json"
)

// Store is the state directory.
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

func (s *Store) ImagesDir() string { return filepath.Join(s.Dir, "images") }
func (s *Store) labsDir() string   { return filepath.Join(s.Dir, "labs") }

// Lab returns the layout of a lab's directory. It is the only way from a
// name to a path, and refuses names that are not lab names.
func (s *Store) Lab(name string) (Layout, error) {
	if err := spec.CheckLabName(name); err != nil {
		return Layout{}, err
	}
	return Layout{Name: name, Dir: filepath.Join(s.labsDir(), name)}, nil
}

// layout is Lab for names already checked (read from a saved state, or
// from a lab file that passed validation).
func (s *Store) layout(name string) Layout {
	return Layout{Name: name, Dir: filepath.Join(s.labsDir(), name)}
}

// Layout is where one lab's files are.
type Layout struct {
	Name string // the lab's name
	Dir  string // labs/<name>
}

func (l Layout) path(name string) string { return filepath.Join(l.Dir, name) }

func (l Layout) State() string        { return l.path(StateFile) }
func (l Layout) LabFile() string      { return l.path(LabFile) }
func (l Layout) RunFile() string      { return l.path(RunFile) }
func (l Layout) Events() string       { return l.path(EventsFile) }
func (l Layout) Key() string          { return l.path(KeyFile) }
func (l Layout) KnownHosts() string   { return l.path(KnownHostsFile) }
func (l Layout) Password() string     { return l.path(PasswordFile) }
func (l Layout) KernelFabric() string { return l.path(KernelFabricFile) }
func (l Layout) GuestFabric() string  { return l.path(GuestFabricFile) }
func (l Layout) CoordPID() string     { return l.path(CoordPIDFile) }
func (l Layout) CoordLog() string     { return l.path(CoordLogFile) }

// FabricSocket is the userspace fabric daemon's control socket; the
// daemon's other files are beside it (userspace.Launch names them).
func (l Layout) FabricSocket() string { return l.path(userspace.SocketFile) }

// Disk, Seed and SerialLog are a VM's files.
func (l Layout) Disk(host string) string      { return l.path(host + ".qcow2") }
func (l Layout) Seed(host string) string      { return l.path(host + "-seed.iso") }
func (l Layout) SerialLog(host string) string { return l.path(host + "-serial.log") }

// Workloads is the workload runner's directory; WorkloadDir one
// workload's outputs on one host.
func (l Layout) Workloads() string     { return l.path(WorkloadsDir) }
func (l Layout) WorkloadsPlan() string { return filepath.Join(l.Workloads(), WorkloadsPlan) }
func (l Layout) RunnerPID() string     { return filepath.Join(l.Workloads(), RunnerPIDFile) }
func (l Layout) RunnerLog() string     { return filepath.Join(l.Workloads(), RunnerLogFile) }
func (l Layout) WorkloadDir(name, host string) string {
	return filepath.Join(l.Workloads(), name, host)
}

// lockPath is beside the lab directory, not in it: destroy removes the
// directory while it holds the lock.
func (l Layout) lockPath() string { return filepath.Join(filepath.Dir(l.Dir), "."+l.Name+".lock") }

// LayoutOf is the layout of a lab whose state was loaded or created
// through Lab, so its name is known to be good.
func (s *Store) LayoutOf(st *State) Layout { return s.layout(st.Lab) }

package labs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/internal/proc"
	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric/userspace"
)

// GCOptions choose what gc looks at and whether it removes.
type GCOptions struct {
	// IDs limits gc to these lab ids (4 hex digits); none: every id.
	IDs []string
	// StateDirs are more state dirs whose labs are not orphans, beside
	// this one, the machine's registry and those domains name.
	StateDirs []string
	// Lab limits the lab directories gc looks at to this one (destroy of
	// a lab with damaged state).
	Lab string
	// Remove removes what was found; false only lists it.
	Remove bool
}

// Orphan is one object no lab state accounts for.
type Orphan struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // domain, network, netdev, process, dir
	Name string `json:"name"`
	// Why it is an orphan, or its type.
	Note string `json:"note,omitempty"`
	// Removed: gone after gc --yes; Error: why it is not.
	Removed bool   `json:"removed,omitempty"`
	Error   string `json:"error,omitempty"`
}

// GCReport is what gc found and did.
type GCReport struct {
	Orphans []Orphan `json:"orphans"`
	// StateDirs are the state dirs whose labs were taken as alive.
	StateDirs []string `json:"state_dirs"`
	// Kept are ids that carry objects but belong to a lab of one of them.
	Kept map[string]string `json:"kept,omitempty"`
}

// GC finds every forgelab object (libvirt domain and network, netdev,
// helper process, lab directory) that no lab state accounts for: a state
// dir deleted by hand, a damaged state.json, a crash of forgelab itself.
// With Remove it removes them.
//
// Objects are machine-wide, state is per state dir: an id is alive when
// a lab with a readable state has it in this state dir, in any state dir
// of the machine's registry (every create registers its state dir), in
// opts.StateDirs, or in the state dir a domain of that id names in its
// metadata. Objects of a forgelab that registers nothing (an older
// version) look like orphans: limit gc with IDs when such labs may run.
//
// Helper processes are found only through the pid files of lab
// directories without a readable state, and stopped by their recorded
// identity: a process whose lab directory is gone is not guessed at by
// name.
func (m *Manager) GC(ctx context.Context, opts GCOptions) (*GCReport, error) {
	only := func(id string) bool { return len(opts.IDs) == 0 || slices.Contains(opts.IDs, id) }
	// Objects first, then the states: a lab saves its state before it
	// makes anything, so an object listed here whose lab is being
	// created has its state saved by the time the states are read.
	objs, err := m.labObjects(ctx)
	if err != nil {
		return nil, err
	}
	rep := &GCReport{Kept: map[string]string{}}
	ours := absDir(m.Store.Dir)
	dirs := []string{ours}
	if m.Registry != "" {
		reg, err := store.Registered(m.Registry)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, reg...)
	}
	dirs = append(dirs, opts.StateDirs...)
	for _, o := range objs {
		if o.StateDir != "" {
			dirs = append(dirs, o.StateDir)
		}
	}
	alive := map[string]string{}
	type broken struct{ name, id, why string }
	var brokenDirs []broken
	seen := map[string]bool{}
	for _, d := range dirs {
		d = absDir(d)
		if seen[d] {
			continue
		}
		seen[d] = true
		rep.StateDirs = append(rep.StateDirs, d)
		entries, err := (&store.Store{Dir: d}).List()
		if err != nil {
			if d == ours {
				return nil, err
			}
			continue // a state dir removed since it was registered
		}
		for _, e := range entries {
			if e.State != nil {
				alive[e.State.ID] = fmt.Sprintf("lab %s of state dir %s", e.Name, d)
			} else if d == ours && (opts.Lab == "" || opts.Lab == e.Name) {
				why := "lab directory without a readable state"
				if e.Err != nil {
					why = e.Err.Error()
				}
				brokenDirs = append(brokenDirs, broken{e.Name, plan.IDOf(e.Name), why})
			}
		}
	}
	for _, o := range objs {
		if !only(o.ID) {
			continue
		}
		if who, ok := alive[o.ID]; ok {
			rep.Kept[o.ID] = who
			continue
		}
		note := o.Type
		if o.Lab != "" {
			note = "made for lab " + o.Lab
			if o.StateDir != "" {
				note += " of state dir " + o.StateDir + ", which no longer has it"
			}
		}
		rep.Orphans = append(rep.Orphans, Orphan{ID: o.ID, Kind: o.Kind, Name: o.Name, Note: note})
	}
	for _, b := range brokenDirs {
		if !only(b.id) {
			continue
		}
		l, err := m.Store.Lab(b.name)
		if err != nil {
			continue // not a lab name: forgelab did not make it
		}
		for _, pf := range []string{l.CoordPID(), l.RunnerPID()} {
			if pid, ok := livePID(pf); ok {
				rep.Orphans = append(rep.Orphans, Orphan{ID: b.id, Kind: store.KindProcess, Name: pf, Note: "pid " + strconv.Itoa(pid)})
			}
		}
		if fileExists(l.FabricSocket()) || fileExists(filepath.Join(l.Dir, userspace.PIDFile)) {
			rep.Orphans = append(rep.Orphans, Orphan{ID: b.id, Kind: store.KindFabricd, Name: l.Dir, Note: "userspace fabric daemon"})
		}
		rep.Orphans = append(rep.Orphans, Orphan{ID: b.id, Kind: store.KindDir, Name: l.Dir, Note: b.why})
	}
	sort.SliceStable(rep.Orphans, func(i, j int) bool {
		if rep.Orphans[i].ID != rep.Orphans[j].ID {
			return rep.Orphans[i].ID < rep.Orphans[j].ID
		}
		return gcOrder(rep.Orphans[i]) < gcOrder(rep.Orphans[j])
	})
	if opts.Remove {
		m.removeOrphans(ctx, rep.Orphans)
	}
	return rep, nil
}

// gcOrder is the removal order: processes (they hold taps), domains
// (they hold taps and disks), netdevs other than bridges, bridges,
// networks, lab directories last.
func gcOrder(o Orphan) int {
	switch o.Kind {
	case store.KindProcess, store.KindFabricd:
		return 0
	case hypervisor.KindDomain:
		return 1
	case kindNetdev:
		if o.Note == "bridge" {
			return 3
		}
		return 2
	case hypervisor.KindNetwork:
		return 4
	}
	return 5
}

func (m *Manager) removeOrphans(ctx context.Context, orphans []Orphan) {
	failed := map[string]bool{} // ids with a failure keep their lab dir
	for i := range orphans {
		o := &orphans[i]
		var err error
		switch o.Kind {
		case store.KindProcess:
			err = proc.Stop(context.WithoutCancel(ctx), o.Name, proc.StopOptions{LegacyMark: o.Name})
		case store.KindFabricd:
			err = m.Fabric.Stop(ctx, o.Name)
		case hypervisor.KindDomain:
			err = m.VMs.RemoveDomain(ctx, o.Name)
		case kindNetdev:
			err = m.Netdevs.DeleteLink(o.Name)
		case hypervisor.KindNetwork:
			err = m.VMs.RemoveNetwork(ctx, o.Name)
		case store.KindDir:
			if failed[o.ID] {
				err = errors.New("kept: something of this lab could not be removed")
			} else {
				err = os.RemoveAll(o.Name)
			}
		}
		if err != nil {
			o.Error = err.Error()
			failed[o.ID] = true
			continue
		}
		o.Removed = true
	}
}

// livePID reads a pid file and reports whether the helper it recorded
// still runs (the same process, not another that got its number).
func livePID(pidFile string) (int, bool) {
	if !proc.Alive(pidFile, pidFile) {
		return 0, false
	}
	r, err := proc.ReadFile(pidFile)
	return r.PID, err == nil
}

// destroyBroken is destroy of a lab whose state cannot be read: gc for
// its id and its directory only.
func (m *Manager) destroyBroken(ctx context.Context, name string, loadErr error) error {
	m.progress("the state of lab %s cannot be read (%v): removing the objects of its id %s that no other lab accounts for", name, loadErr, plan.IDOf(name))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rep, err := m.GC(ctx, GCOptions{IDs: []string{plan.IDOf(name)}, Lab: name, Remove: true})
	if err != nil {
		return fmt.Errorf("destroy lab %s with damaged state: %w", name, err)
	}
	var errs []error
	for _, o := range rep.Orphans {
		if o.Error != "" {
			errs = append(errs, fmt.Errorf("%s %s: %s", o.Kind, o.Name, o.Error))
		} else {
			m.progress("  removed %s %s", o.Kind, o.Name)
		}
	}
	if who, ok := rep.Kept[plan.IDOf(name)]; ok {
		m.progress("  objects with id %s belong to %s: left alone", plan.IDOf(name), who)
	}
	if len(errs) > 0 {
		return fmt.Errorf("destroy lab %s with damaged state: %w", name, errors.Join(errs...))
	}
	return nil
}

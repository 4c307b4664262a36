package labs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/netfabric"
)

// labObject is one machine-wide object (libvirt domain or network, or a
// netdev) whose name carries a lab id.
type labObject struct {
	ID, Kind, Name string
	// Type is a netdev's kind (bridge, tuntap, veth, vxlan, ifb).
	Type string
	// Domains only: what their <metadata> says.
	Lab, StateDir string
}

func (o labObject) String() string {
	switch o.Kind {
	case hypervisor.KindDomain, hypervisor.KindNetwork:
		return "libvirt " + o.Kind + " " + o.Name
	}
	if o.Type != "" {
		return "netdev " + o.Name + " (" + o.Type + ")"
	}
	return "netdev " + o.Name
}

// kindNetdev is labObject's Kind for a netdev.
const kindNetdev = "netdev"

// labObjects lists every domain, network and netdev on this machine whose
// name carries a lab id ("fl-<id>-..." and "fl<id>..."), whoever made it.
func (m *Manager) labObjects(ctx context.Context) ([]labObject, error) {
	objs, err := m.VMs.Objects(ctx)
	if err != nil {
		return nil, err
	}
	links, err := m.Netdevs.Links()
	if err != nil {
		return nil, err
	}
	var out []labObject
	for _, o := range objs {
		if id, ok := plan.IDOfObject(o.Kind, o.Name); ok {
			out = append(out, labObject{ID: id, Kind: o.Kind, Name: o.Name, Lab: o.Lab, StateDir: o.StateDir})
		}
	}
	for _, l := range links {
		if id, ok := plan.IDOfObject(kindNetdev, l.Name); ok {
			out = append(out, labObject{ID: id, Kind: kindNetdev, Name: l.Name, Type: l.Type})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ownerOf says who the objects of one id seem to belong to: what the
// domains of that id name in their metadata, or "unknown".
func ownerOf(objs []labObject, id string) string {
	seen := map[string]bool{}
	var owners []string
	for _, o := range objs {
		if o.ID != id || o.Lab == "" {
			continue
		}
		w := "lab " + o.Lab
		if o.StateDir != "" {
			w += " of state dir " + o.StateDir
		}
		if !seen[w] {
			seen[w] = true
			owners = append(owners, w)
		}
	}
	if len(owners) == 0 {
		return "owner unknown (no domain of that id names its lab)"
	}
	return "seems to belong to " + strings.Join(owners, " and ")
}

// checkNamesFree refuses a lab whose id is already in any object name on
// this machine (another state dir's lab, a leftover, or an id collision).
// It checks every name the lab could use, not only the planned ones: ifb,
// veth and vxlan devices are named from the same prefix. Nothing is made
// before this passes, so create's undo never meets an object it did not
// make.
func (m *Manager) checkNamesFree(ctx context.Context, p *Plan) error {
	objs, err := m.labObjects(ctx)
	if err != nil {
		return fmt.Errorf("check that the names of lab %s are free: %w", p.Lab, err)
	}
	var clash []string
	for _, o := range objs {
		if o.ID == p.ID {
			clash = append(clash, "  "+o.String())
		}
	}
	if len(clash) == 0 {
		return nil
	}
	dir, _ := filepath.Abs(m.Store.Dir)
	return fmt.Errorf("lab %s cannot be created: its id %s is already in the names of objects on this machine (%s):\n%s\n"+
		"nothing was made (forgelab never removes what it did not make). Fix: if another lab uses them, destroy it with its own state dir "+
		"(`forgelab --state-dir DIR destroy LAB`) or rename this lab (the id comes from the name); if they are leftovers, "+
		"`forgelab --state-dir %s gc --id %s` lists them and `... gc --id %s --yes` removes them",
		p.Lab, p.ID, ownerOf(objs, p.ID), strings.Join(clash, "\n"), dir, p.ID, p.ID)
}

// notMade drops the record of an object a make call found taken by someone
// else (it appeared after checkNamesFree), so that create's undo leaves it,
// and says so in err.
func notMade(rec *Recorder, kind, name string, err error) error {
	if !errors.Is(err, hypervisor.ErrExists) && !errors.Is(err, netfabric.ErrExists) {
		return err
	}
	if ferr := rec.Forget(kind, name); ferr != nil {
		return fmt.Errorf("%w (and dropping the record of %s %s failed: %v: destroy may remove it)", err, kind, name, ferr)
	}
	const stays = ": it appeared after the check of this lab's names; it is not this lab's, so it stays"
	if strings.HasSuffix(err.Error(), stays) {
		return err // a second object of the same clash (a network's bridge)
	}
	return fmt.Errorf("%w%s", err, stays)
}

// notOurs reports whether a domain recorded in st belongs, by its
// metadata, to another lab or another state dir: teardown leaves it.
func (m *Manager) notOurs(objs []hypervisor.Object, st *State, name string) (string, bool) {
	dir, _ := filepath.Abs(m.Store.Dir)
	for _, o := range objs {
		if o.Kind != hypervisor.KindDomain || o.Name != name || o.Lab == "" {
			continue
		}
		if o.Lab != st.Lab || (o.StateDir != "" && o.StateDir != dir) {
			return o.Owner(), true
		}
	}
	return "", false
}

package labs

import (
	"time"

	"github.com/forgelab/forgelab/labs/store"
)

// Info is what `forgelab inspect` shows.
type Info struct {
	Lab          string      `json:"lab"`
	ID           string      `json:"id"`
	File         string      `json:"file"`
	Phase        string      `json:"phase"`
	Error        string      `json:"error,omitempty"`
	Created      time.Time   `json:"created"`
	Accel        string      `json:"accel"`
	AccelReason  string      `json:"accel_reason"`
	Fabric       string      `json:"fabric"`
	FabricReason string      `json:"fabric_reason"`
	User         string      `json:"user"`
	StateDir     string      `json:"state_dir"`
	Mgmt         string      `json:"mgmt_network"`
	Routing      string      `json:"routing"` // none | static
	Hosts        []HostInfo  `json:"hosts"`
	Links        []LinkInfo  `json:"links"`
	Coord        *CoordState `json:"coord,omitempty"` // the coordination service, when the lab has software
	// Steps is how long each step of create took.
	Steps []store.StepTime `json:"steps,omitempty"`
}

type HostInfo struct {
	Name      string        `json:"name"`
	Kind      string        `json:"kind"`
	Domain    string        `json:"domain"`
	State     string        `json:"state"`
	Ready     bool          `json:"ready"`
	CPUs      int           `json:"cpus"`
	MemoryMiB int           `json:"memory_mib"`
	Image     string        `json:"image"`
	MgmtIP    string        `json:"mgmt_ip"`
	Node4     string        `json:"node4,omitempty"` // node addresses (on node0, no link's)
	Node6     string        `json:"node6,omitempty"`
	BootTime  time.Duration `json:"boot_time_ns,omitempty"`
	BootCPU   time.Duration `json:"boot_cpu_ns,omitempty"`
	NICs      []NICInfo     `json:"nics"`
	SerialLog string        `json:"serial_log"`
	Changes   int           `json:"changes,omitempty"` // physical hosts: forgelab's changes there, undone by destroy
}

type NICInfo struct {
	Name      string   `json:"name"`
	Link      string   `json:"link"`
	MAC       string   `json:"mac"`
	Tap       string   `json:"tap"`
	Addresses []string `json:"addresses"`
}

type LinkInfo struct {
	Name      string   `json:"name"`
	Bridge    string   `json:"bridge"`
	Endpoints []string `json:"endpoints"`
	Subnet4   string   `json:"subnet4"`
	Subnet6   string   `json:"subnet6"`
	Quality   Quality  `json:"quality"`
}

// Inspect reads a lab's state and asks libvirt for each domain's state.
func (m *Manager) Inspect(name string) (*Info, error) {
	st, err := m.Store.Load(name)
	if err != nil {
		return nil, err
	}
	info := &Info{
		Lab: st.Lab, ID: st.ID, File: st.File, Phase: st.Phase, Error: st.Error,
		Created: st.Created, Accel: st.Accel, AccelReason: st.AccelReason,
		User: st.User, StateDir: m.Store.LayoutOf(st).Dir, Steps: st.Steps,
	}
	p := st.Plan
	if p == nil {
		return info, nil
	}
	info.Fabric, info.FabricReason = st.Fabric, st.FabricReason
	info.Mgmt, info.Routing = p.Mgmt.Prefix.String(), p.Routing
	for _, h := range p.Hosts {
		hi := HostInfo{
			Name: h.Name, Kind: kindName(h.Kind), Domain: h.Domain, CPUs: h.CPUs, MemoryMiB: h.MemoryMiB,
			Image: h.Image, MgmtIP: h.MgmtIP.String(),
			SerialLog: m.Store.LayoutOf(st).SerialLog(h.Name),
		}
		if h.Node4.IsValid() {
			hi.Node4, hi.Node6 = h.Node4.String(), h.Node6.String()
		}
		if hs := st.Hosts[h.Name]; hs != nil {
			hi.Ready, hi.BootTime, hi.BootCPU = hs.Ready, hs.BootTime, hs.BootCPU
		}
		hi.State = "unknown"
		if m.VMs != nil {
			if s, err := m.VMs.DomainState(h.Domain); err == nil {
				hi.State = s
			}
		}
		for _, n := range h.NICs {
			ni := NICInfo{Name: n.Name, Link: n.Link, MAC: n.MAC, Tap: n.Tap}
			for _, a := range n.Addresses {
				ni.Addresses = append(ni.Addresses, a.String())
			}
			hi.NICs = append(hi.NICs, ni)
		}
		info.Hosts = append(info.Hosts, hi)
	}
	for _, l := range p.Links {
		info.Links = append(info.Links, LinkInfo{
			Name: l.Name, Bridge: l.Bridge, Endpoints: l.Endpoints,
			Subnet4: l.Subnet4.String(), Subnet6: l.Subnet6.String(), Quality: l.Quality,
		})
	}
	inspectSoftware(st, info)
	return info, nil
}

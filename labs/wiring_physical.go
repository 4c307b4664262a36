package labs

import (
	"net/netip"

	"github.com/forgelab/forgelab/netfabric"
)

// AddVXLAN makes the lab's end of a tunnel to a physical host (VXLANMaker).
func (hostNetdevs) AddVXLAN(v VXLAN) (netip.Addr, error) {
	return netfabric.AddVXLAN(netfabric.VXLAN{Name: v.Name, VNI: v.VNI, Local: v.Local, Remote: v.Remote, Port: v.Port})
}

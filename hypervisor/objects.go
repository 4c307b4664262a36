package hypervisor

import (
	"context"
	"encoding/xml"
	"fmt"
)

// Object kinds in libvirt.
const (
	KindDomain  = "domain"
	KindNetwork = "network"
)

// Object is one libvirt domain or network, with what it says about its
// owner: a domain forgelab made names its lab, the lab's id and the state
// directory in its <metadata>. Networks carry no such record (libvirt 9.0
// has no network metadata); their name holds the lab's id.
type Object struct {
	Kind     string
	Name     string
	Lab      string // "" when unknown
	LabID    string
	StateDir string
	Active   bool
}

// Owner says who an object seems to belong to, for error messages.
func (o Object) Owner() string {
	switch {
	case o.Lab != "" && o.StateDir != "":
		return fmt.Sprintf("lab %s of state dir %s", o.Lab, o.StateDir)
	case o.Lab != "":
		return "lab " + o.Lab + " (state dir not recorded)"
	}
	return "unknown (not made by forgelab, or made without a record of its lab)"
}

// Objects lists every domain and network of this libvirt connection, so
// create can check its names and gc can find orphans in one pass.
func (c *Conn) Objects(ctx context.Context) ([]Object, error) {
	return boundedValue(ctx, c, "list domains and networks", c.objects)
}

func (c *Conn) objects() ([]Object, error) {
	doms, err := c.v.domainXMLs()
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	var out []Object
	for _, d := range doms {
		var head struct {
			Name string `xml:"name"`
		}
		if xml.Unmarshal([]byte(d.xml), &head) != nil {
			continue
		}
		o := Object{Kind: KindDomain, Name: head.Name, Active: d.active}
		if md, ok := metadataOf(d.xml); ok {
			o.Lab, o.LabID, o.StateDir = md.Name, md.ID, md.StateDir
		}
		out = append(out, o)
	}
	nets, err := c.v.networkList()
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range nets {
		var head struct {
			Name string `xml:"name"`
		}
		if xml.Unmarshal([]byte(n.xml), &head) != nil {
			continue
		}
		out = append(out, Object{Kind: KindNetwork, Name: head.Name, Active: n.active})
	}
	return out, nil
}

// listed is one domain or network as a listing returns it.
type listed struct {
	xml    string
	active bool
}

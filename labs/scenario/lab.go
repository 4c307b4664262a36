package scenario

import (
	"slices"
	"strings"
)

// checkLab reports names in e that the lab does not have.
func (e *event) checkLab(lab *Lab) {
	t, a := e.t, e.proto
	var links []string
	for _, l := range lab.Links {
		links = append(links, l.Name)
	}
	link := func() *LabLink {
		for i := range lab.Links {
			if lab.Links[i].Name == a.Link {
				return &lab.Links[i]
			}
		}
		t.Errorf("link", "link %q is not in the lab (links: %s)", a.Link, list(links))
		return nil
	}
	host := func(key, name string) bool {
		if slices.Contains(lab.Hosts, name) {
			return true
		}
		t.Errorf(key, "host %q is not in the lab (hosts: %s)", name, list(lab.Hosts))
		return false
	}
	switch a.Kind {
	case LinkSet, LinkRamp, LinkReset, LinkDown, LinkUp, LinkFlap:
		if l := link(); l != nil && a.Sender != "" && !slices.Contains(l.Endpoints, a.Sender) {
			t.Errorf("sender", "sender %q is not on link %s (its hosts: %s)", a.Sender, l.Name, list(l.Endpoints))
		}
	case NICDown, NICUp:
		if host("host", a.Host) {
			if l := link(); l != nil && !slices.Contains(l.Endpoints, a.Host) {
				t.Errorf("link", "host %s has no NIC on link %s (its hosts: %s)", a.Host, l.Name, list(l.Endpoints))
			}
		}
	case HostStop, HostStart, HostKill, HostPause, HostResume, HostReboot, Exec:
		host("host", a.Host)
	case WorkStart, WorkStop:
		if !slices.Contains(lab.Workloads, a.Workload) {
			t.Errorf("workload", "workload %q is not in the lab (workloads: %s)", a.Workload, list(lab.Workloads))
		}
	case Partition:
		seen := map[string]int{}
		for i, g := range a.Groups {
			for _, h := range g {
				if !host("groups", h) {
					continue
				}
				if j, dup := seen[h]; dup {
					t.Errorf("groups", "host %q is in groups %d and %d (a host can be in one group)", h, j+1, i+1)
				}
				seen[h] = i
			}
		}
	}
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

package labs

// Node addresses and static routes in the hosts (issue 10 item 6). Every
// host gets its node addresses (plan: HostPlan.Node4/Node6) on a dummy
// interface, forwarding on and reverse-path filtering off, from a systemd
// oneshot forgelab-routes.service that runs at every boot; with
// [lab] routing = "static" the same script installs the shortest-path
// static routes of package routing. On a physical host the unit goes
// through the host's journal, so destroy takes it back.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/forgelab/forgelab/labs/routing"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/provision"
)

// RoutesService is the name of the unit that sets up node addresses and
// routes (forgelab-routes.service in the guest).
const RoutesService = "routes"

// RouteScripts is the script each host runs at boot, by host name. It
// reports hosts that static routing cannot reach from each other.
func RouteScripts(p *Plan) (scripts map[string]string, unreachable []string, err error) {
	hosts := make([]routing.Host, 0, len(p.Hosts))
	for _, h := range p.Hosts {
		hosts = append(hosts, routing.Host{Name: h.Name, Node4: h.Node4, Node6: h.Node6})
	}
	var routes map[string][]routing.Route
	if p.Routing == spec.RoutingStatic {
		var links []routing.Link
		for _, l := range p.Links {
			rl := routing.Link{Name: l.Name}
			for _, e := range l.Endpoints {
				h := p.Host(e)
				for _, n := range h.NICs {
					if n.Link != l.Name {
						continue
					}
					ifc := routing.Iface{Host: e, Dev: n.Name}
					for _, a := range n.Addresses {
						if a.Addr().Is4() {
							ifc.Addr4 = a
						} else {
							ifc.Addr6 = a
						}
					}
					rl.Ifaces = append(rl.Ifaces, ifc)
				}
			}
			links = append(links, rl)
		}
		if routes, unreachable, err = routing.Routes(hosts, links); err != nil {
			return nil, nil, fmt.Errorf("static routes of lab %s: %w", p.Lab, err)
		}
	}
	scripts = map[string]string{}
	for _, h := range hosts {
		s, err := routing.Script(h, routes[h.Name])
		if err != nil {
			return nil, nil, fmt.Errorf("lab %s: %w", p.Lab, err)
		}
		scripts[h.Name] = s
	}
	return scripts, unreachable, nil
}

// needsRoutes: node addresses are set up in labs that run software (it is
// what talks to them) or ask for static routes. A lab of bare hosts skips
// the step, and with it one SSH round per host.
func needsRoutes(sp *Spec, p *Plan) bool {
	return sp.HasSoftware() || p.Routing == spec.RoutingStatic
}

// installRoutes is the create step "routes": the oneshot unit on every
// host, started now and enabled for every boot, before the lab's own
// services (a routing daemon announces the node addresses it sets up).
func (m *Manager) installRoutes(ctx context.Context, rec *Recorder, sp *Spec) error {
	st := rec.State()
	p := st.Plan
	if !needsRoutes(sp, p) {
		return nil
	}
	scripts, unreachable, err := RouteScripts(p)
	if err != nil {
		return err
	}
	if len(unreachable) > 0 {
		m.progress("routing static: no path for %s (the lab's links do not join them)", strings.Join(unreachable, ", "))
	}
	conns, err := m.connectAll(ctx, st, p)
	defer func() {
		for _, r := range conns {
			r.Close()
		}
	}()
	if err != nil {
		return err
	}
	errs := make([]error, len(p.Hosts))
	var wg sync.WaitGroup
	for i, h := range p.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sm, err := conns[h.Name].Services(ctx, m.serviceOptions(rec, h.Name))
			if err != nil {
				errs[i] = err
				return
			}
			if sm.Manager() != provision.ManagerSystemd {
				m.progress("host %s has no systemd: its node addresses and routes are not set up (run the script of `forgelab inspect` by hand)", h.Name)
				return
			}
			svc := provision.Service{Name: RoutesService, Command: scripts[h.Name], Oneshot: true, Undo: routing.UndoScript()}
			if err := sm.Install(ctx, svc); err != nil {
				errs[i] = err
				return
			}
			if err := sm.Restart(ctx, svc.Name); err != nil {
				errs[i] = err
				return
			}
			if err := sm.WaitReady(ctx, svc); err != nil {
				errs[i] = fmt.Errorf("host %s: node addresses and routes: %w", h.Name, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.progress("node addresses on %d hosts (routing %s)", len(p.Hosts), p.Routing)
	return nil
}

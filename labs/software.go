package labs

// The software side of create: once every host answers SSH, forgelab
// starts the lab's coordination service, deploys files, starts services
// in file order (each on all its hosts at once) and waits until each is
// ready, then starts the workloads in the background and returns. create
// does not wait for workloads: `forgelab workload --wait LAB` does.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/provision"
	"github.com/forgelab/forgelab/provision/coord"
	"github.com/forgelab/forgelab/telemetry/procstat"
)

// deployParallel is how many hosts get files at once.
const deployParallel = 4

// facts is what templates see about every host of the lab.
func facts(p *Plan) map[string]provision.HostFacts {
	out := map[string]provision.HostFacts{}
	for _, h := range p.Hosts {
		hf := provision.HostFacts{Name: h.Name, Mgmt: kindOf(h).mgmtAddr(h), Position: h.Position, Node4: h.Node4, Node6: h.Node6}
		for _, n := range h.NICs {
			lf := provision.LinkFacts{Name: n.Link, Addresses: n.Addresses}
			if l := p.Link(n.Link); l != nil {
				for _, e := range l.Endpoints {
					if e != h.Name {
						lf.Peers = append(lf.Peers, e)
					}
				}
			}
			hf.Links = append(hf.Links, lf)
		}
		out[h.Name] = hf
	}
	return out
}

// hostFacts is what templates rendered for one host see.
func hostFacts(p *Plan, coord *CoordState, host string) provision.Facts {
	all := facts(p)
	f := provision.Facts{Lab: p.Lab, Seed: p.Seed, Host: all[host], Hosts: all}
	if coord != nil {
		f.Coord = coord.URLs[host]
	}
	return f
}

// coordForCheck stands in for the coordination service when templates are
// checked before it exists.
func coordForCheck(p *Plan) *CoordState {
	c := &CoordState{Port: 7070, URLs: map[string]string{}}
	for _, h := range p.Hosts {
		c.URLs[h.Name] = coord.URL(p.Mgmt.Gateway.String()+":7070", "TOKEN")
	}
	return c
}

// CheckSoftware renders every template and plans every deploy for every
// host against the plan, so that a bad template, a missing file or a
// symlink escaping its tree fails before anything is made or booted.
func CheckSoftware(sp *Spec, p *Plan) error {
	var errs Errors
	add := func(line int, format string, args ...any) {
		errs = append(errs, &Error{File: sp.File, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	coord := coordForCheck(p)
	checked := map[int]bool{} // deploys without templates are the same for every host
	for _, h := range p.Hosts {
		f := hostFacts(p, coord, h.Name)
		for i, d := range sp.Deploys {
			if !spec.OnHost(d.Hosts, h.Name) || checked[i] {
				continue
			}
			checked[i] = !d.Template
			if err := toDeploy(sp, d).Check(&f); err != nil {
				add(d.Line, "deploy #%d for host %s: %v", i+1, h.Name, templateError(err))
			}
		}
		for _, s := range sp.Services {
			if !spec.OnHost(s.Hosts, h.Name) {
				continue
			}
			svc, err := toService(s, f)
			if err == nil {
				err = svc.Validate()
			}
			if err != nil {
				add(s.Line, "service %s for host %s: %v", s.Name, h.Name, templateError(err))
			}
		}
		for _, w := range sp.Workloads {
			if !spec.OnHost(w.Hosts, h.Name) {
				continue
			}
			if _, err := toWorkload(w, f); err != nil {
				add(w.Line, "workload %s for host %s: %v", w.Name, h.Name, templateError(err))
			}
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return dedupe(errs)
	}
	return nil
}

// templateError shortens text/template's execution errors to what the
// function said: `template: NAME:1:14: executing "NAME" at <ip "zz">:
// error calling ip: ip "zz": no host ...` -> `ip "zz": no host ...`.
func templateError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "error calling "); i >= 0 {
		if j := strings.Index(msg[i:], ": "); j >= 0 {
			return msg[i+j+2:]
		}
	}
	return msg
}

// dedupe drops repeats of one message for several hosts, keeping the
// first, so a template error shared by every host is said once.
func dedupe(errs Errors) Errors {
	var out Errors
	seen := map[string]bool{}
	for _, e := range errs {
		key := fmt.Sprint(e.Line) + stripHost(e.Msg)
		if !seen[key] {
			seen[key] = true
			out = append(out, e)
		}
	}
	return out
}

func stripHost(msg string) string {
	if i := strings.Index(msg, " for host "); i >= 0 {
		if j := strings.Index(msg[i+10:], ":"); j >= 0 {
			return msg[:i] + msg[i+10+j:]
		}
	}
	return msg
}

func toDeploy(sp *Spec, d DeploySpec) provision.Deploy {
	return provision.Deploy{
		Src: sp.SourcePath(d), Dst: d.Dst, Mode: d.Mode, Owner: d.Owner,
		Exclude: d.Exclude, Template: d.Template,
	}
}

// labEnv is what forgelab adds to the environment of services and
// workloads.
func labEnv(f provision.Facts) map[string]string {
	env := map[string]string{"FORGELAB_LAB": f.Lab, "FORGELAB_HOST": f.Host.Name}
	if f.Coord != "" {
		env["FORGELAB_COORD"] = f.Coord
	}
	return env
}

func toService(s ServiceSpec, f provision.Facts) (provision.Service, error) {
	svc := provision.Service{
		Name: s.Name, Command: s.Command, WorkDir: s.WorkDir, Env: map[string]string{},
		Restart: s.Restart, User: s.User, Ready: s.Ready, ReadyTimeout: s.ReadyTimeout, Uses: s.Uses,
	}
	for k, v := range s.Env {
		svc.Env[k] = v
	}
	svc, err := svc.Rendered(f)
	for k, v := range labEnv(f) {
		svc.Env[k] = v
	}
	return svc, err
}

func toWorkload(w WorkloadSpec, f provision.Facts) (provision.Workload, error) {
	wl := provision.Workload{
		Name: w.Name, Command: w.Command, WorkDir: w.WorkDir, Env: map[string]string{},
		User: w.User, Timeout: w.Timeout,
	}
	for k, v := range w.Env {
		wl.Env[k] = v
	}
	wl, err := wl.Rendered(f)
	for k, v := range labEnv(f) {
		wl.Env[k] = v
	}
	// The marker a run's sampler finds the workload's processes by
	// (children inherit it).
	wl.Env[procstat.WorkloadEnv] = w.Name
	return wl, err
}

// setupSoftware deploys files, starts services and waits for them, once
// every host answers SSH, then starts the workloads in the background.
func (m *Manager) setupSoftware(ctx context.Context, rec *Recorder, sp *Spec) error {
	if !sp.HasSoftware() {
		return nil
	}
	st := rec.State()
	p := st.Plan
	if err := m.startCoord(ctx, rec); err != nil {
		return err
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
	if len(sp.Deploys) > 0 {
		if _, err := m.deployAll(ctx, rec, sp, conns, nil); err != nil {
			return err
		}
	}
	if err := m.startServices(ctx, rec, sp, conns, sp.Services); err != nil {
		return err
	}
	return m.startWorkloads(ctx, rec, sp)
}

// startCoord starts the coordination service on the management network's
// gateway and on this machine's address towards each physical host.
func (m *Manager) startCoord(ctx context.Context, rec *Recorder) error {
	st := rec.State()
	p := st.Plan
	addrs := []netip.Addr{p.Mgmt.Gateway}
	via := map[string]netip.Addr{}
	for _, h := range p.Hosts {
		via[h.Name] = p.Mgmt.Gateway
		if ah := st.Adopted[h.Name]; !kindOf(h).madeHere() && ah != nil {
			a, err := netip.ParseAddr(ah.Local)
			if err != nil {
				return fmt.Errorf("coordination service: no address towards host %s", h.Name)
			}
			via[h.Name] = a
			if !containsAddr(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	l := m.Store.LayoutOf(st)
	pidFile := l.CoordPID()
	token, err := coord.NewToken()
	if err != nil {
		return err
	}
	if err := rec.Record(store.KindProcess, pidFile); err != nil {
		return err
	}
	port, err := m.software().StartCoord(ctx, addrs, token, pidFile, l.CoordLog())
	if err != nil {
		return err
	}
	// The URLs carry the token (state.json is 0600); hosts get them in
	// root-only environment files.
	cs := &CoordState{Port: port, URLs: map[string]string{}}
	for h, a := range via {
		cs.URLs[h] = coord.URL(netip.AddrPortFrom(a, uint16(port)).String(), token)
	}
	m.progress("coordination service on port %d (%s)", port, joinAddrs(addrs))
	return rec.Update(func(s *State) { s.Coord = cs })
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func joinAddrs(list []netip.Addr) string {
	s := make([]string, len(list))
	for i, a := range list {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// connectAll opens one connection per host, in parallel.
func (m *Manager) connectAll(ctx context.Context, st *State, p *Plan) (map[string]Remote, error) {
	conns := map[string]Remote{}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, h := range p.Hosts {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			r, err := m.software().Connect(ctx, st, name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("host %s: %w", name, err))
				return
			}
			conns[name] = r
		}(h.Name)
	}
	wg.Wait()
	return conns, errors.Join(errs...)
}

// deployOptions are the options for deploys to one host: journalled on
// hosts forgelab did not make.
func (m *Manager) deployOptions(rec *Recorder, host string, f *provision.Facts) provision.DeployOptions {
	o := provision.DeployOptions{Facts: f}
	if h := rec.State().Plan.Host(host); h != nil && !kindOf(*h).madeHere() {
		o.Journal = m.journal(rec, host)
		o.BackupDir = "/var/lib/forgelab-adopted/" + rec.State().Lab + "/backup"
	}
	return o
}

// serviceOptions are the options for services on one host.
func (m *Manager) serviceOptions(rec *Recorder, host string) provision.ServiceOptions {
	o := provision.ServiceOptions{Host: host}
	if rec != nil {
		if h := rec.State().Plan.Host(host); h != nil && !kindOf(*h).madeHere() {
			o.Journal = m.journal(rec, host)
		}
	}
	return o
}

// deployAll copies every [[deploy]] to its hosts (only to host when it is
// not ""), at most deployParallel hosts at once, a host's deploys in file
// order. It returns what changed on each host.
func (m *Manager) deployAll(ctx context.Context, rec *Recorder, sp *Spec, conns map[string]Remote, only map[string]bool) (map[string]provision.Report, error) {
	p := rec.State().Plan
	reports := map[string]provision.Report{}
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, deployParallel)
	var wg sync.WaitGroup
	start := time.Now()
	for _, h := range p.Hosts {
		if only != nil && !only[h.Name] {
			continue
		}
		var ds []DeploySpec
		for _, d := range sp.Deploys {
			if spec.OnHost(d.Hosts, h.Name) {
				ds = append(ds, d)
			}
		}
		if len(ds) == 0 {
			continue
		}
		wg.Add(1)
		go func(host string, ds []DeploySpec) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			f := hostFacts(p, rec.State().Coord, host)
			o := m.deployOptions(rec, host, &f)
			var total provision.Report
			var err error
			for _, d := range ds {
				var rep provision.Report
				rep, err = conns[host].Deploy(ctx, toDeploy(sp, d), o)
				total.Sent += rep.Sent
				total.Skipped += rep.Skipped
				total.Updated += rep.Updated
				total.Bytes += rep.Bytes
				total.Changed = append(total.Changed, rep.Changed...)
				if err != nil {
					err = fmt.Errorf("host %s: %w", host, err)
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			reports[host] = total
			if err != nil {
				errs = append(errs, err)
			}
		}(h.Name, ds)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return reports, err
	}
	for _, h := range p.Hosts {
		if r, ok := reports[h.Name]; ok {
			m.progress("deploy %s: %s", h.Name, r)
		}
	}
	m.progress("deployed to %d hosts in %s", len(reports), time.Since(start).Round(10*time.Millisecond))
	return reports, nil
}

// startServices installs, (re)starts and waits for each service, in file
// order; one service on all its hosts at once.
func (m *Manager) startServices(ctx context.Context, rec *Recorder, sp *Spec, conns map[string]Remote, services []ServiceSpec) error {
	p := rec.State().Plan
	managers := map[string]ServiceManager{}
	for _, s := range services {
		start := time.Now()
		var hosts []string
		for _, h := range p.Hosts {
			if spec.OnHost(s.Hosts, h.Name) {
				hosts = append(hosts, h.Name)
			}
		}
		errs := make([]error, len(hosts))
		var wg sync.WaitGroup
		for i, host := range hosts {
			sm := managers[host]
			if sm == nil {
				var err error
				if sm, err = conns[host].Services(ctx, m.serviceOptions(rec, host)); err != nil {
					return err
				}
				managers[host] = sm
			}
			wg.Add(1)
			go func(i int, host string, sm ServiceManager) {
				defer wg.Done()
				errs[i] = m.upService(ctx, rec, sm, s, host)
			}(i, host, sm)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		m.progress("service %s: ready on %s in %s", s.Name, strings.Join(hosts, ", "), time.Since(start).Round(10*time.Millisecond))
	}
	return nil
}

func (m *Manager) upService(ctx context.Context, rec *Recorder, sm ServiceManager, s ServiceSpec, host string) error {
	svc, err := toService(s, hostFacts(rec.State().Plan, rec.State().Coord, host))
	if err != nil {
		return fmt.Errorf("service %s on host %s: %w", s.Name, host, err)
	}
	if err := sm.Install(ctx, svc); err != nil {
		return err
	}
	if err := sm.Restart(ctx, svc.Name); err != nil {
		return err
	}
	return sm.WaitReady(ctx, svc)
}

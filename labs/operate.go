package labs

// Work on a running lab's software: redeploy after a rebuild, read
// service logs, and the coordination service's body.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/provision"
	"github.com/forgelab/forgelab/provision/coord"
)

// DeployResult is what a redeploy did on one host.
type DeployResult struct {
	Host      string           `json:"host"`
	Report    provision.Report `json:"report"`
	Restarted []string         `json:"restarted,omitempty"` // services restarted because what they use changed
}

// Redeploy copies the lab's [[deploy]] entries again (to host only, when
// it is not "") without recreating the lab: files whose sha256 matches
// are skipped, and every service that uses a changed path is restarted
// (its unit re-installed) and waited for. The entries are the lab file's
// as create read them (recorded in the state): the files they name are
// read again, the lab file is not, so edits to it after create do not
// leak into the running lab.
func (m *Manager) Redeploy(ctx context.Context, lab, host string) ([]DeployResult, error) {
	unlock, err := m.Store.Lock(ctx, lab, "deploy")
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := m.Store.Load(lab)
	if err != nil {
		return nil, err
	}
	if st.Phase != store.PhaseReady {
		return nil, fmt.Errorf("lab %s is %s, not ready: nothing to deploy to", lab, st.Phase)
	}
	sp, err := recordedSpec(st)
	if err != nil {
		return nil, err
	}
	if host != "" && st.Plan.Host(host) == nil {
		return nil, fmt.Errorf("lab %s has no host %q (hosts: %s)", lab, host, hostNames(st.Plan))
	}
	if err := CheckSoftware(sp, st.Plan); err != nil {
		return nil, err
	}
	rec := m.Store.Recorder(st)
	only := map[string]bool{}
	for _, h := range st.Plan.Hosts {
		if host == "" || h.Name == host {
			only[h.Name] = true
		}
	}
	conns := map[string]Remote{}
	defer func() {
		for _, r := range conns {
			r.Close()
		}
	}()
	var errs []error
	for name := range only {
		r, err := m.software().Connect(ctx, st, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", name, err))
			continue
		}
		conns[name] = r
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	reports, err := m.deployAll(ctx, rec, sp, conns, only)
	var results []DeployResult
	for _, h := range st.Plan.Hosts {
		if r, ok := reports[h.Name]; ok {
			results = append(results, DeployResult{Host: h.Name, Report: r})
		}
	}
	if err != nil {
		return results, err
	}
	// Restart what uses what changed: per host, the services in file order.
	for i := range results {
		res := &results[i]
		if len(res.Report.Changed) == 0 {
			continue
		}
		var affected []ServiceSpec
		f := hostFacts(st.Plan, st.Coord, res.Host)
		for _, s := range sp.Services {
			if !spec.OnHost(s.Hosts, res.Host) {
				continue
			}
			svc, err := toService(s, f)
			if err != nil {
				return results, err
			}
			if svc.Affected(res.Report.Changed) {
				affected = append(affected, s)
			}
		}
		if len(affected) == 0 {
			continue
		}
		sm, err := conns[res.Host].Services(ctx, m.serviceOptions(rec, res.Host))
		if err != nil {
			return results, err
		}
		for _, s := range affected {
			if err := m.upService(ctx, rec, sm, s, res.Host); err != nil {
				return results, err
			}
			res.Restarted = append(res.Restarted, s.Name)
			m.progress("service %s on %s restarted and ready", s.Name, res.Host)
		}
	}
	return results, nil
}

// recordedSpec is the lab file as create read it. A lab made by an older
// forgelab has none in its state: its lab file is read again, and must
// still have the lab's hosts.
func recordedSpec(st *State) (*Spec, error) {
	if st.Spec != nil {
		return st.Spec, nil
	}
	sp, err := spec.Load(st.File)
	if err != nil {
		return nil, fmt.Errorf("lab file of %s: %w", st.Lab, err)
	}
	if err := sameHosts(sp, st.Plan); err != nil {
		return nil, fmt.Errorf("%s: %w: the lab file's hosts changed since create (recreate the lab to apply that)", st.File, err)
	}
	return sp, nil
}

// sameHosts checks that a lab file still has the hosts of a plan.
func sameHosts(sp *Spec, p *Plan) error {
	var want, got []string
	for _, h := range p.Hosts {
		want = append(want, h.Name+"/"+kindName(h.Kind))
	}
	for _, h := range sp.Hosts {
		got = append(got, h.Name+"/"+kindName(h.Kind))
	}
	if sp.Lab.Name != p.Lab {
		return fmt.Errorf("it names lab %s, not %s", sp.Lab.Name, p.Lab)
	}
	if !slices.Equal(want, got) {
		return fmt.Errorf("hosts %s, the lab has %s", strings.Join(got, ", "), strings.Join(want, ", "))
	}
	return nil
}

// Logs writes a host's service logs (every forgelab service of the host
// when service is ""; the last lines, all when lines <= 0) to w; follow
// keeps writing until ctx ends.
func (m *Manager) Logs(ctx context.Context, lab, host, service string, lines int, follow bool, w io.Writer) error {
	st, err := m.Store.Load(lab)
	if err != nil {
		return err
	}
	if st.Plan == nil || st.Plan.Host(host) == nil {
		return fmt.Errorf("lab %s has no host %q", lab, host)
	}
	if service != "" {
		if sp, err := recordedSpec(st); err == nil {
			var names []string
			for _, s := range sp.Services {
				if spec.OnHost(s.Hosts, host) {
					names = append(names, s.Name)
				}
			}
			if !slices.Contains(names, service) {
				sort.Strings(names)
				return fmt.Errorf("host %s of lab %s runs no service %q (its services: %s)", host, lab, service, orNone(strings.Join(names, ", ")))
			}
		}
	}
	r, err := m.software().Connect(ctx, st, host)
	if err != nil {
		return err
	}
	defer r.Close()
	sm, err := r.Services(ctx, m.serviceOptions(nil, host))
	if err != nil {
		return err
	}
	return sm.Logs(ctx, service, lines, follow, w)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// CoordTokenEnv passes the lab's coordination token to coordd (not an
// argument: any user can read a process's arguments).
const CoordTokenEnv = "FORGELAB_COORD_TOKEN"

// ServeCoord runs the lab's coordination service until ctx ends, on the
// first fds inherited file descriptors (3, 4, ...: listeners StartCoord
// bound) and on every listen address, answering requests that carry the
// token in $FORGELAB_COORD_TOKEN. It is the body of `forgelab coordd`.
func ServeCoord(ctx context.Context, fds int, listen []string) error {
	token := os.Getenv(CoordTokenEnv)
	if token == "" {
		return errors.New("coordd: no token in $" + CoordTokenEnv)
	}
	var lns []net.Listener
	fail := func(err error) error {
		for _, l := range lns {
			l.Close()
		}
		return fmt.Errorf("coordd: %w", err)
	}
	for i := range fds {
		f := os.NewFile(uintptr(3+i), fmt.Sprintf("listener %d", i))
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return fail(err)
		}
		lns = append(lns, ln)
	}
	for _, a := range listen {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || ap.Addr().IsUnspecified() {
			return fail(fmt.Errorf("--listen %s: give ADDR:PORT with the address the lab's hosts reach", a))
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fail(err)
		}
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		return errors.New("coordd: nothing to listen on (--fds, --listen)")
	}
	srv := coord.New(token, coord.Limits{})
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func(ln net.Listener) { errc <- srv.Serve(ctx, ln) }(ln)
		fmt.Printf("coordination service listening on %s\n", ln.Addr())
	}
	var first error
	for range lns {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

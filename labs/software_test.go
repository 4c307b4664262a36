package labs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/internal/proc"
	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/provision"
)

// fakeSoftware stands in for SSH and the helper processes. It keeps a log
// of what happened, in order, and each host's files. Helpers are real
// `sleep` processes with real pid files, so destroy's stopping of them is
// tested for real.
type fakeSoftware struct {
	mu        sync.Mutex
	log       []string
	files     map[string]map[string]string // host -> remote path -> sha256
	notReady  string                       // "service@host" that never gets ready
	adoptErr  map[string]error             // host -> error of Adopt
	undone    map[string][]provision.Change
	envs      map[string]map[string]string // "service@host" -> env
	commands  map[string]string            // "service@host" -> rendered command
	helpers   []int
	workloads []plannedWorkload
}

func newFakeSoftware() *fakeSoftware {
	return &fakeSoftware{files: map[string]map[string]string{}, adoptErr: map[string]error{},
		undone: map[string][]provision.Change{}, envs: map[string]map[string]string{}, commands: map[string]string{}}
}

func (f *fakeSoftware) logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, fmt.Sprintf(format, args...))
}

func (f *fakeSoftware) events(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.log {
		if strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func (f *fakeSoftware) index(event string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Index(f.log, event)
}

func (f *fakeSoftware) Adopt(ctx context.Context, h provision.PhysicalHost) (Remote, []provision.Check, error) {
	if err := f.adoptErr[h.Name]; err != nil {
		return nil, nil, err
	}
	f.logf("adopt %s %s@%s:%d", h.Name, h.User, h.Address, h.Port)
	return &fakeRemote{f: f, host: h.Name}, []provision.Check{{Name: "sudo", OK: true, Required: true}}, nil
}

func (f *fakeSoftware) Connect(ctx context.Context, st *State, host string) (Remote, error) {
	return &fakeRemote{f: f, host: host}, nil
}

func (f *fakeSoftware) helper(pidFile string) error {
	cmd := exec.Command("sleep", "120")
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	f.mu.Lock()
	f.helpers = append(f.helpers, cmd.Process.Pid)
	f.mu.Unlock()
	rec, err := proc.Identify(cmd.Process.Pid) // as the real launcher records it
	if err != nil {
		return err
	}
	return proc.WriteFile(pidFile, rec)
}

func (f *fakeSoftware) StartCoord(ctx context.Context, addrs []netip.Addr, token, pidFile, logFile string) (int, error) {
	f.logf("coord %v", addrs)
	return 7070, f.helper(pidFile)
}

func (f *fakeSoftware) StartWorkloads(ctx context.Context, lab, pidFile, logFile string) error {
	planned, err := readPlan(filepath.Join(filepath.Dir(pidFile), store.WorkloadsPlan))
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.workloads = planned
	f.mu.Unlock()
	f.logf("workloads %d", len(planned))
	return f.helper(pidFile)
}

// helpersAlive lists the helper pids still running.
func (f *fakeSoftware) helpersAlive() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, pid := range f.helpers {
		if syscall.Kill(pid, 0) == nil {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
				out = append(out, pid)
			}
		}
	}
	return out
}

type fakeRemote struct {
	f    *fakeSoftware
	host string
}

// record mimics provision's journal: the change is saved before it is made.
func record(j *provision.Journal, ch provision.Change) error {
	if j == nil {
		return nil
	}
	j.Changes = append(j.Changes, ch)
	if j.Save != nil {
		return j.Save(j)
	}
	return nil
}

func (r *fakeRemote) Deploy(ctx context.Context, d provision.Deploy, o provision.DeployOptions) (provision.Report, error) {
	if err := d.Check(o.Facts); err != nil {
		return provision.Report{}, err
	}
	var rep provision.Report
	err := filepath.WalkDir(d.Src, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(d.Src, p)
		remote := path.Join(d.Dst, filepath.ToSlash(rel))
		if p == d.Src && strings.HasSuffix(d.Dst, "/") {
			remote = d.Dst + filepath.Base(p)
		}
		data, _ := os.ReadFile(p)
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		r.f.mu.Lock()
		files := r.f.files[r.host]
		if files == nil {
			files = map[string]string{}
			r.f.files[r.host] = files
		}
		same := files[remote] == h
		r.f.mu.Unlock()
		if same {
			rep.Skipped++
			return nil
		}
		if err := record(o.Journal, provision.Change{Kind: provision.ChangeFile, Path: remote}); err != nil {
			return err
		}
		r.f.mu.Lock()
		files[remote] = h
		r.f.mu.Unlock()
		rep.Sent++
		rep.Bytes += int64(len(data))
		rep.Changed = append(rep.Changed, remote)
		return nil
	})
	r.f.logf("deploy %s %s", r.host, d.Dst)
	return rep, err
}

func (r *fakeRemote) Services(ctx context.Context, o provision.ServiceOptions) (ServiceManager, error) {
	return &fakeServices{r: r, j: o.Journal}, nil
}

// RunWorkload prints one metric line and a log line, as a workload would.
func (r *fakeRemote) RunWorkload(ctx context.Context, w provision.Workload, outDir string) (provision.WorkloadResult, error) {
	res := provision.WorkloadResult{Name: w.Name, Started: time.Now()}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return res, err
	}
	res.Stdout = filepath.Join(outDir, w.Name+".stdout")
	os.WriteFile(res.Stdout, []byte("starting\n{\"delivery\": 1, \"host\": \""+r.host+"\"}\n"), 0o644)
	res.Metrics = []provision.Metric{{Time: time.Now(), Values: map[string]any{"delivery": 1.0, "host": r.host}}}
	res.Ended = time.Now()
	r.f.logf("workload %s@%s", w.Name, r.host)
	return res, nil
}

func (r *fakeRemote) AddNetdev(ctx context.Context, j *provision.Journal, dev, script string) error {
	if err := record(j, provision.Change{Kind: provision.ChangeNetdev, Dev: dev}); err != nil {
		return err
	}
	r.f.logf("netdev %s %s %s", r.host, dev, strings.ReplaceAll(strings.TrimSpace(script), "\n", "; "))
	return nil
}

func (r *fakeRemote) Undo(ctx context.Context, j *provision.Journal) error {
	r.f.mu.Lock()
	r.f.undone[r.host] = append(r.f.undone[r.host], j.Changes...)
	r.f.mu.Unlock()
	j.Changes = nil
	if j.Save != nil {
		return j.Save(j)
	}
	return nil
}

func (r *fakeRemote) LocalAddr() netip.Addr  { return netip.MustParseAddr("192.0.2.1") }
func (r *fakeRemote) RemoteAddr() netip.Addr { return netip.MustParseAddr("192.0.2.10") }
func (r *fakeRemote) Close() error           { return nil }

type fakeServices struct {
	r *fakeRemote
	j *provision.Journal
}

func (s *fakeServices) Manager() string { return provision.ManagerSystemd }
func (s *fakeServices) Install(ctx context.Context, svc provision.Service) error {
	if err := svc.Validate(); err != nil {
		return err
	}
	if err := record(s.j, provision.Change{Kind: provision.ChangeUnit, Name: svc.Unit()}); err != nil {
		return err
	}
	key := svc.Name + "@" + s.r.host
	s.r.f.mu.Lock()
	s.r.f.envs[key] = svc.Env
	s.r.f.commands[key] = svc.Command
	s.r.f.mu.Unlock()
	s.r.f.logf("install %s", key)
	return nil
}
func (s *fakeServices) Restart(ctx context.Context, name string) error {
	s.r.f.logf("restart %s@%s", name, s.r.host)
	return nil
}
func (s *fakeServices) WaitReady(ctx context.Context, svc provision.Service) error {
	key := svc.Name + "@" + s.r.host
	if key == s.r.f.notReady {
		return &provision.NotReadyError{Host: s.r.host, Service: svc.Name, Check: svc.Ready, After: svc.ReadyTimeout,
			Reason: "last check: exit status 1", LogTail: []string{"starting " + svc.Name, "panic: cannot bind :7000"}}
	}
	s.r.f.logf("ready %s", key)
	return nil
}

// Logs writes one line as journalctl -o short-iso does; with follow, a
// second one and then it waits, as journalctl -f does, until ctx ends.
func (s *fakeServices) Logs(ctx context.Context, name string, lines int, follow bool, w io.Writer) error {
	ident := name
	if ident == "" {
		ident = "server"
	}
	fmt.Fprintf(w, "2026-12-02T02:30:00+0000 %s %s[12]: log of %s on %s\n", s.r.host, ident, name, s.r.host)
	if follow {
		s.r.f.logf("follow %s", s.r.host)
		fmt.Fprintf(w, "2026-12-02T02:30:01+0000 %s systemd[1]: Started forgelab-%s.service\n  continued", s.r.host, ident)
		<-ctx.Done()
		s.r.f.logf("unfollow %s", s.r.host)
	}
	return nil
}

// fakeWorldVX is fakeWorld with VXLAN tunnels.
type fakeWorldVX struct{ *fakeWorld }

func (f fakeWorldVX) AddVXLAN(v VXLAN) (netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.netdevs[v.Name] = true
	return netip.MustParseAddr("192.0.2.1"), nil
}

func newSoftwareManager(t *testing.T) (*Manager, *fakeWorld, *fakeSoftware) {
	t.Helper()
	w := newFakeWorld()
	m := newTestManager(t, w)
	m.Netdevs = fakeWorldVX{w}
	sw := newFakeSoftware()
	m.Software = sw
	return m, w, sw
}

// writeSpec writes a lab file with a build tree beside it and loads it.
func writeSpec(t *testing.T, text string) *Spec {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"build/app/bin/server": "#!/bin/sh\nexec sleep 1000\n",
		"build/app/etc/conf":   "peers\n",
		"build/tool":           "tool\n",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o755)
	}
	file := filepath.Join(dir, "lab.toml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const softwareLab = threeHosts + `
[[deploy]]
src = "build/app"
dst = "/opt/app"
[[deploy]]
hosts = ["c"]
src = "build/tool"
dst = "/usr/local/bin/"
[[service]]
name = "server"
hosts = ["a", "b"]
command = "/opt/app/bin/server --peer {{ ip \"c\" }}"
env = { SEED = "{{ .Seed }}" }
ready = "tcp://127.0.0.1:7000"
[[service]]
name = "tool"
hosts = ["c"]
command = "/usr/local/bin/tool --coord {{ .Coord }}"
uses = ["/usr/local/bin/tool"]
[[workload]]
name = "sender"
host = "a"
command = "send --to {{ ip \"b\" \"ab\" }}"
[[workload]]
name = "pingers"
hosts = ["b", "c"]
command = "ping -c 3 {{ ip \"a\" }}"
`

// create runs every step in order: coordination service, deploys,
// services one after another (each ready on all its hosts before the
// next), then the workloads; destroy stops the helpers and leaves nothing.
func TestCreateSoftware(t *testing.T) {
	m, w, sw := newSoftwareManager(t)
	sp := writeSpec(t, softwareLab)
	st, err := m.Create(context.Background(), sp, CreateOptions{Accel: hypervisor.TCG})
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != store.PhaseReady || st.Coord == nil || st.Coord.Port != 7070 {
		t.Fatalf("phase %s, coord %+v", st.Phase, st.Coord)
	}
	gw := st.Plan.Mgmt.Gateway.String()
	coord := sw.index(fmt.Sprintf("coord [%s]", gw))
	deploys := sw.events("deploy ")
	// Node addresses first (3 hosts: install, restart, ready), then the software.
	if coord != 9 || len(deploys) != 4 || len(sw.events("ready routes@")) != 3 {
		t.Fatalf("coord at %d, deploys %v (log %v)", coord, deploys, sw.log)
	}
	last := func(evs ...string) int {
		n := -1
		for _, e := range evs {
			i := sw.index(e)
			if i < 0 {
				t.Fatalf("no %q in %v", e, sw.log)
			}
			n = max(n, i)
		}
		return n
	}
	first := func(evs ...string) int {
		n := 1 << 30
		for _, e := range evs {
			n = min(n, sw.index(e))
		}
		return n
	}
	if !(last("deploy a /opt/app", "deploy b /opt/app", "deploy c /opt/app", "deploy c /usr/local/bin/") < first("install server@a", "install server@b") &&
		last("ready server@a", "ready server@b") < sw.index("install tool@c") &&
		sw.index("ready tool@c") < sw.index("workloads 3")) {
		t.Fatalf("steps out of order: %v", sw.log)
	}
	b := st.Plan.Host("b")
	c := st.Plan.Host("c")
	if got := sw.commands["server@a"]; got != "/opt/app/bin/server --peer "+c.NICs[0].Addresses[0].Addr().String() {
		t.Errorf("rendered command %q", got)
	}
	env := sw.envs["server@b"]
	if env["SEED"] != "1" || env["FORGELAB_COORD"] != st.Coord.URLs["b"] || !strings.HasSuffix(st.Coord.URLs["b"], "@"+gw+":7070") || env["FORGELAB_HOST"] != "b" || env["FORGELAB_LAB"] != "trio" {
		t.Errorf("env %v", env)
	}
	if got := sw.commands["tool@c"]; got != "/usr/local/bin/tool --coord "+st.Coord.URLs["c"] {
		t.Errorf("rendered command %q", got)
	}
	var sender plannedWorkload
	for _, pw := range sw.workloads {
		if pw.Workload.Name == "sender" {
			sender = pw
		}
	}
	if sender.Host != "a" || sender.Workload.Command != "send --to "+b.NICs[0].Addresses[0].Addr().String() || sender.Workload.Env["FORGELAB_COORD"] == "" {
		t.Errorf("planned sender %+v", sender)
	}
	ws, err := m.Workloads("trio", "")
	if err != nil || len(ws) != 3 || ws[0].Name != "sender" || ws[0].State != WorkloadPending {
		t.Errorf("workloads %+v %v", ws, err)
	}
	if _, err := m.Workloads("trio", "nope"); err == nil || !strings.Contains(err.Error(), "workloads: pingers, sender") {
		t.Errorf("unknown workload: %v", err)
	}
	if len(sw.helpersAlive()) != 2 {
		t.Fatalf("helpers running: %v", sw.helpersAlive())
	}
	if err := m.Destroy(context.Background(), "trio"); err != nil {
		t.Fatal(err)
	}
	if left := w.leftovers(); left != "" {
		t.Errorf("leaked: %s", left)
	}
	if alive := sw.helpersAlive(); len(alive) != 0 {
		t.Errorf("helpers still running after destroy: %v", alive)
	}
}

// A service that never gets ready fails create with its log tail, and
// everything made, helpers included, is removed.
func TestCreateServiceNeverReady(t *testing.T) {
	m, w, sw := newSoftwareManager(t)
	sw.notReady = "server@b"
	_, err := m.Create(context.Background(), writeSpec(t, softwareLab), CreateOptions{Accel: hypervisor.TCG})
	var nre *provision.NotReadyError
	if !errors.As(err, &nre) || !strings.Contains(err.Error(), "service server on host b not ready") || !strings.Contains(err.Error(), "| panic: cannot bind :7000") {
		t.Fatalf("create: %v", err)
	}
	if left := w.leftovers(); left != "" {
		t.Errorf("leaked: %s", left)
	}
	if alive := sw.helpersAlive(); len(alive) != 0 {
		t.Errorf("helpers still running: %v", alive)
	}
	if names, _ := m.Store.Labs(); len(names) != 0 {
		t.Errorf("state left for %v", names)
	}
	if sw.index("install tool@c") >= 0 || len(sw.events("workloads")) > 0 {
		t.Errorf("went on after the failure: %v", sw.log)
	}
}

// Templates are rendered for every host before anything is made.
func TestCreateBadTemplateMakesNothing(t *testing.T) {
	m, w, sw := newSoftwareManager(t)
	sp := writeSpec(t, threeHosts+`
[[service]]
name = "s"
command = "run --peer {{ ip \"zz\" }}"
`)
	_, err := m.Create(context.Background(), sp, CreateOptions{Accel: hypervisor.TCG})
	if err == nil || !strings.Contains(err.Error(), `lab.toml:20: service s for host a: ip "zz": no host "zz" in lab trio (hosts: a, b, c)`) || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("create: %v", err)
	}
	if left := w.leftovers(); left != "" || len(sw.log) > 0 {
		t.Errorf("made %s / did %v", left, sw.log)
	}
	if names, _ := m.Store.Labs(); len(names) != 0 {
		t.Errorf("state left for %v", names)
	}
}

const physicalLab = `
[lab]
name = "mixed"
[[host]]
name = "a"
[[host]]
name = "edge"
kind = "physical"
ssh = { address = "192.0.2.10", port = 2222, key = "id_test" }
[[link]]
name = "ae"
endpoints = ["a", "edge"]
[[deploy]]
src = "build/app"
dst = "/opt/app"
[[service]]
name = "server"
command = "/opt/app/bin/server"
`

// A physical host is adopted, not booted: its tunnel's lab end exists
// before the fabric starts, its end and every change there are journalled
// in the state, and destroy undoes exactly that journal.
func TestCreatePhysicalHost(t *testing.T) {
	m, w, sw := newSoftwareManager(t)
	sp := writeSpec(t, physicalLab)
	os.WriteFile(filepath.Join(filepath.Dir(sp.File), "id_test"), []byte("key"), 0o600)
	st, err := m.Create(context.Background(), sp, CreateOptions{Accel: hypervisor.TCG})
	if err != nil {
		t.Fatal(err)
	}
	edge := st.Plan.Host("edge")
	vx := edge.NICs[0].Tap
	if !w.netdevs[vx] || vx != "fl"+st.ID+"h01v01" {
		t.Fatalf("no tunnel %s: %v", vx, w.netdevs)
	}
	if len(w.domains) != 1 {
		t.Errorf("%d domains: the physical host was booted?", len(w.domains))
	}
	if got := sw.events("adopt "); len(got) != 1 || got[0] != "adopt edge root@192.0.2.10:2222" {
		t.Errorf("adopt: %v", got)
	}
	nd := sw.events("netdev edge")
	a4 := edge.NICs[0].Addresses[0]
	if len(nd) != 1 || !strings.Contains(nd[0], "remote 192.0.2.1 local 192.0.2.10 dstport 4789") || !strings.Contains(nd[0], "ip addr add "+a4.String()+" dev "+vx) {
		t.Errorf("host's end of the tunnel: %v", nd)
	}
	// The state on disk has the journal, in order.
	saved, _ := m.Store.Load("mixed")
	ah := saved.Adopted["edge"]
	var kinds []string
	for _, ch := range ah.Changes {
		kinds = append(kinds, string(ch.Kind))
	}
	// The routes unit is journalled like the lab's own: destroy takes it back.
	if want := []string{"netdev", "unit", "file", "file", "unit"}; !slices.Equal(kinds, want) || ah.Local != "192.0.2.1" || ah.Addr != "192.0.2.10:2222" {
		t.Errorf("journal %v (%+v), want %v", kinds, ah, want)
	}
	if !slices.Contains(saved.Resources, Resource{Kind: store.KindAdopted, Name: "edge"}) {
		t.Errorf("no adopted resource: %v", saved.Resources)
	}
	if got := saved.Coord.URLs["edge"]; !regexp.MustCompile(`^http://forgelab:[0-9a-f]{32}@192\.0\.2\.1:7070$`).MatchString(got) {
		t.Errorf("coord URL of edge %q", got)
	}
	if err := m.Destroy(context.Background(), "mixed"); err != nil {
		t.Fatal(err)
	}
	if n := len(sw.undone["edge"]); n != 5 {
		t.Errorf("undone %d changes, want 5", n)
	}
	if left := w.leftovers(); left != "" {
		t.Errorf("leaked: %s", left)
	}
}

// A physical host that cannot be adopted (unknown host key, refused key,
// unreachable) fails create with that error and nothing is left: it was
// never changed, so there is nothing to undo on it.
func TestCreateAdoptFails(t *testing.T) {
	m, w, sw := newSoftwareManager(t)
	sw.adoptErr["edge"] = &provision.UnreachableError{Addr: "192.0.2.10:2222", Err: errors.New("i/o timeout")}
	sp := writeSpec(t, physicalLab)
	os.WriteFile(filepath.Join(filepath.Dir(sp.File), "id_test"), []byte("key"), 0o600)
	_, err := m.Create(context.Background(), sp, CreateOptions{Accel: hypervisor.TCG})
	var ue *provision.UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "host edge: cannot reach 192.0.2.10:2222") {
		t.Fatalf("create: %v", err)
	}
	if left := w.leftovers(); left != "" {
		t.Errorf("leaked: %s", left)
	}
	if len(sw.undone) != 0 {
		t.Errorf("undo on a host never changed: %v", sw.undone)
	}
	if names, _ := m.Store.Labs(); len(names) != 0 {
		t.Errorf("state left for %v", names)
	}
}

// Redeploy sends only what changed and restarts only the services that
// use it.
func TestRedeploy(t *testing.T) {
	m, w, sw := newSoftwareManager(t)
	sp := writeSpec(t, softwareLab)
	if _, err := m.Create(context.Background(), sp, CreateOptions{Accel: hypervisor.TCG}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		m.Destroy(context.Background(), "trio")
		if left := w.leftovers(); left != "" {
			t.Errorf("leaked: %s", left)
		}
	}()
	res, err := m.Redeploy(context.Background(), "trio", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Report.Sent != 0 || len(r.Restarted) != 0 {
			t.Errorf("unchanged redeploy on %s: %+v", r.Host, r)
		}
	}
	os.WriteFile(filepath.Join(filepath.Dir(sp.File), "build/app/bin/server"), []byte("#!/bin/sh\nexec sleep 2000\n"), 0o755)
	res, err = m.Redeploy(context.Background(), "trio", "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Host != "a" || res[0].Report.Sent != 1 || res[0].Report.Skipped != 1 || !slices.Equal(res[0].Restarted, []string{"server"}) {
		t.Fatalf("redeploy: %+v", res)
	}
	if sw.index("restart server@b") != sw.index("restart server@b") || len(sw.events("restart server@a")) != 2 || len(sw.events("restart server@b")) != 1 {
		t.Errorf("restarts: %v", sw.events("restart"))
	}
	os.WriteFile(filepath.Join(filepath.Dir(sp.File), "build/tool"), []byte("tool 2\n"), 0o755)
	res, err = m.Redeploy(context.Background(), "trio", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		want := map[string]int{"b": 1, "c": 2}[r.Host] // b and c still had the old server
		if r.Report.Sent != want {
			t.Errorf("host %s: %+v", r.Host, r)
		}
	}
	if n := len(sw.events("restart tool@c")); n != 2 {
		t.Errorf("tool restarted %d times, want 2", n)
	}
	if _, err := m.Redeploy(context.Background(), "trio", "zz"); err == nil || !strings.Contains(err.Error(), `no host "zz"`) {
		t.Errorf("redeploy to a host that is not there: %v", err)
	}
	// Edits to the lab file after create do not leak in: redeploy uses
	// the lab file as create read it.
	os.WriteFile(sp.File, []byte(softwareLab+"[[host]]\nname = \"d\"\n"), 0o644)
	res, err = m.Redeploy(context.Background(), "trio", "")
	if err != nil {
		t.Fatalf("redeploy after the lab file changed: %v", err)
	}
	for _, r := range res {
		if r.Host == "d" || r.Report.Sent != 0 {
			t.Errorf("redeploy after the lab file changed: %+v", r)
		}
	}
	// A lab made before the spec was recorded reads its lab file again,
	// and refuses one whose hosts changed.
	st, _ := m.Store.Load("trio")
	st.Spec = nil
	m.Store.Recorder(st).Update(func(*State) {})
	if _, err := m.Redeploy(context.Background(), "trio", ""); err == nil || !strings.Contains(err.Error(), "hosts changed") {
		t.Errorf("redeploy of an old lab after the hosts changed: %v", err)
	}
}

// How a physical host is reached: paths from the lab file's directory,
// the lab's known_hosts (written on first use) plus the user's (only
// read), trust on first use only at adoption and only when asked for.
func TestPhysicalHostTarget(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	st := &State{Lab: "mixed", File: "/labs/x/lab.toml"}
	s := &Store{Dir: "/state"}
	h := HostPlan{Name: "edge", Kind: spec.KindPhysical, SSH: &SSHSpec{Address: "192.0.2.10", Port: 2222, User: "lab", Key: "keys/id", TrustOnFirstUse: true}}
	ph, err := physicalHost(s, st, h, true)
	if err != nil {
		t.Fatal(err)
	}
	if ph.KeyPath != "/labs/x/keys/id" || ph.KnownHosts != "/state/labs/mixed/known_hosts" || !ph.TrustOnFirstUse ||
		len(ph.AlsoKnownHosts) != 1 || ph.AlsoKnownHosts[0] != filepath.Join(home, ".ssh", "known_hosts") || ph.Port != 2222 || ph.User != "lab" {
		t.Errorf("adopt: %+v", ph)
	}
	if ph, _ := physicalHost(s, st, h, false); ph.TrustOnFirstUse {
		t.Error("trusted on first use after adoption")
	}
	// No key given: the agent if there is one, else the user's default key.
	h.SSH = &SSHSpec{Address: "edge.example.net", Port: 22, User: "root", KnownHosts: "~/kh"}
	if _, err := physicalHost(s, st, h, true); err == nil || !strings.Contains(err.Error(), "no SSH key") {
		t.Errorf("no key anywhere: %v", err)
	}
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "id_ecdsa"), []byte("k"), 0o600)
	ph, err = physicalHost(s, st, h, true)
	if err != nil || ph.KeyPath != filepath.Join(home, ".ssh", "id_ecdsa") || ph.UseAgent || ph.AlsoKnownHosts[0] != filepath.Join(home, "kh") {
		t.Errorf("default key: %+v %v", ph, err)
	}
	t.Setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
	if ph, _ := physicalHost(s, st, h, true); !ph.UseAgent || ph.KeyPath != "" {
		t.Errorf("agent: %+v", ph)
	}
	st.Plan = &Plan{Hosts: []HostPlan{h}}
	args, err := sshArgs(s, st, "edge")
	if err != nil || strings.Join(args, " ") != "-p 22 -o UserKnownHostsFile=/state/labs/mixed/known_hosts "+filepath.Join(home, "kh")+" -o StrictHostKeyChecking=yes root@edge.example.net" {
		t.Errorf("ssh args %q %v", args, err)
	}
}

func TestPeerScript(t *testing.T) {
	v := VXLAN{Name: "fl1234h01v01", VNI: 77, Local: netip.MustParseAddr("10.0.0.1"), Remote: netip.MustParseAddr("10.0.0.9"), Port: 4789}
	nic := NICPlan{Addresses: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24"), netip.MustParsePrefix("fd00::2/64")}}
	want := "ip link add fl1234h01v01 mtu 1500 type vxlan id 77 remote 10.0.0.1 local 10.0.0.9 dstport 4789\n" +
		"ip addr add 198.18.0.2/24 dev fl1234h01v01\nip -6 addr add fd00::2/64 dev fl1234h01v01 nodad\nip link set fl1234h01v01 up\n"
	if got := peerScript(v, nic); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if a, b := vxlanVNI("lab", "edge", "ab"), vxlanVNI("lab", "edge", "ac"); a == b || a == 0 || a >= 1<<24 {
		t.Errorf("VNIs %d %d", a, b)
	}
}

// The example lab parses, and its workloads render for their hosts.
func TestQuickstartExample(t *testing.T) {
	data, err := os.ReadFile("../examples/quickstart.toml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse("../examples/quickstart.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Deploys) != 1 || len(s.Workloads) != 2 || s.SourcePath(s.Deploys[0]) != filepath.Join("..", "examples", "quickstart", "bin") {
		t.Fatalf("deploys %+v, workloads %+v", s.Deploys, s.Workloads)
	}
	p, err := plan.NewPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	w, err := toWorkload(s.Workloads[1], hostFacts(p, coordForCheck(p), "a"))
	if err != nil {
		t.Fatal(err)
	}
	b := p.Host("b").NICs[0].Addresses[0].Addr().String()
	if !strings.Contains(w.Command, "--to "+b+":9000") || w.Env["FORGELAB_COORD"] == "" {
		t.Errorf("sender: %+v", w)
	}
}

// destroy signals only the helpers it started: a pid file that names
// another process (a stale file whose number was reused after a reboot)
// leaves that process running.
func TestDestroySparesUnrelatedProcess(t *testing.T) {
	m, _, sw := newSoftwareManager(t)
	st, err := m.Create(context.Background(), writeSpec(t, softwareLab), CreateOptions{Accel: hypervisor.TCG})
	if err != nil {
		t.Fatal(err)
	}
	other := exec.Command("sleep", "300")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() }) // by its pid
	t.Cleanup(func() {
		for _, pid := range sw.helpersAlive() { // the fake helpers the overwritten files named
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	rec, err := proc.Identify(other.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	l := m.Store.LayoutOf(st)
	// A bare pid (older forgelab) and a record of another start.
	os.WriteFile(l.CoordPID(), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o600)
	rec.Start++
	proc.WriteFile(l.RunnerPID(), rec)
	if err := m.Destroy(context.Background(), "trio"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", other.Process.Pid))
	if err != nil || strings.Contains(string(stat), ") Z ") {
		t.Fatalf("destroy ended pid %d, which forgelab did not start: %q %v", other.Process.Pid, stat, err)
	}
}

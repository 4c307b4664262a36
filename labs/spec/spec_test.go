package spec

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/forgelab/forgelab/labs/tomlfile"
)

func parseFile(t *testing.T, path string) *Spec {
	t.Helper()
	s, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return s
}

func TestParseQuickstart(t *testing.T) {
	s := parseFile(t, "testdata/quickstart.toml")
	if s.File != "testdata/quickstart.toml" || s.Lab.Name != "quickstart" || s.Lab.Fabric != "auto" || s.Lab.Seed != 1 || s.Lab.Mgmt.IsValid() {
		t.Errorf("lab = %+v (file %s), want quickstart, auto, seed 1, no mgmt", s.Lab, s.File)
	}
	wantHosts := []struct {
		name string
		line int
	}{{"a", 6}, {"b", 8}, {"c", 10}}
	if len(s.Hosts) != len(wantHosts) {
		t.Fatalf("hosts = %+v", s.Hosts)
	}
	for i, w := range wantHosts {
		h := s.Hosts[i]
		want := HostSpec{Name: w.name, Kind: "vm", Image: "debian-12", CPUs: 1, MemoryMiB: 512, Line: w.line}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("host %d = %+v, want %+v", i, h, want)
		}
	}
	wantLinks := []struct {
		name      string
		endpoints []string
		line      int
		delay     time.Duration
	}{{"ab", []string{"a", "b"}, 12, 0}, {"bc", []string{"b", "c"}, 15, 0}, {"ca", []string{"c", "a"}, 18, 5 * time.Millisecond}}
	for i, w := range wantLinks {
		l := s.Links[i]
		if l.Name != w.name || !reflect.DeepEqual(l.Endpoints, w.endpoints) || l.Line != w.line || l.Quality != (Quality{DelayNs: int64(w.delay)}) {
			t.Errorf("link %d = %+v, want %s %v line %d delay %s", i, l, w.name, w.endpoints, w.line, w.delay)
		}
	}
}

func TestParseEveryKey(t *testing.T) {
	s := parseFile(t, "testdata/full.toml")
	wantLab := LabSection{Name: "full-lab", Fabric: "userspace", Seed: 42, Mgmt: netip.MustParsePrefix("10.77.3.0/24"), Routing: RoutingNone}
	if s.Lab != wantLab {
		t.Errorf("lab = %+v, want %+v", s.Lab, wantLab)
	}
	wantHosts := []HostSpec{
		{Name: "a", Kind: "vm", Image: "debian-12-slim", CPUs: 2, MemoryMiB: 1024, DiskBytes: 8 << 30, Position: [3]float64{0, 10.5, 2}, Line: 14},
		{Name: "b", Kind: "vm", Image: "alpine", CPUs: 4, MemoryMiB: 768, DiskBytes: 0, Position: [3]float64{100, 0, 0}, Line: 19},
		{Name: "edge1", Kind: KindPhysical, Position: [3]float64{-400, 0, 0}, Line: 27, SSH: &SSHSpec{
			Address: "192.0.2.10", Port: 2222, User: "lab", Key: "~/.ssh/id_ed25519", Agent: true, KnownHosts: "~/.ssh/known_hosts", TrustOnFirstUse: true}},
		{Name: "edge2", Kind: KindPhysical, Line: 40, SSH: &SSHSpec{Address: "edge2.example.net", Port: 22, User: "root"}},
	}
	if !reflect.DeepEqual(s.Hosts, wantHosts) {
		t.Errorf("hosts:\n got %+v\nwant %+v", s.Hosts, wantHosts)
	}
	ab := LinkSpec{
		Name: "ab", Endpoints: []string{"a", "b"}, Line: 45,
		Subnet4: netip.MustParsePrefix("10.1.0.0/24"), Subnet6: netip.MustParsePrefix("fd00:1::/64"),
		Addresses: map[string][]netip.Prefix{"a": {netip.MustParsePrefix("10.1.0.5/24"), netip.MustParsePrefix("fd00:1::5/64")}},
		Quality:   Quality{RateBits: 100e6, DelayNs: 5e6, JitterNs: 1e6, LossPct: 0.1, DuplicatePct: 0.5, ReorderPct: 2, CorruptPct: 0.01, Limit: 10000},
	}
	seg := LinkSpec{
		Name: "seg1", Endpoints: []string{"a", "b", "edge1"}, Line: 60,
		Subnet4:   netip.MustParsePrefix("192.168.7.0/24"), // from the pinned address
		Addresses: map[string][]netip.Prefix{"b": {netip.MustParsePrefix("192.168.7.20/24")}},
	}
	bEdge2 := LinkSpec{Name: "b-edge2", Endpoints: []string{"b", "edge2"}, Line: 64}
	if want := []LinkSpec{ab, seg, bEdge2}; !reflect.DeepEqual(s.Links, want) {
		t.Errorf("links:\n got %+v\nwant %+v", s.Links, want)
	}
	mode := os.FileMode(0o750)
	wantDeploys := []DeploySpec{
		{Hosts: []string{"a", "edge1"}, Src: "full-src", Dst: "/opt/mynet/", Mode: &mode, Owner: "lab:lab",
			Exclude: []string{"*.o", "tmp/*"}, Template: true, Line: 67, SrcLine: 69},
		{Src: "full-src/app.conf", Dst: "/etc/mynet/app.conf", Line: 76, SrcLine: 77},
	}
	if !reflect.DeepEqual(s.Deploys, wantDeploys) {
		t.Errorf("deploys:\n got %+v\nwant %+v", s.Deploys, wantDeploys)
	}
	wantServices := []ServiceSpec{
		{Name: "mynetd", Hosts: []string{"a", "b"}, Command: `/opt/mynet/bin/mynetd --peers {{ join .Peers "," }}`,
			WorkDir: "/opt/mynet", Env: map[string]string{"MODE": "demo", "PEER": `{{ ip "b" }}`}, Restart: "always",
			User: "lab", Ready: "tcp://127.0.0.1:7000", ReadyTimeout: 90 * time.Second,
			Uses: []string{"/opt/mynet/bin", "/etc/mynet"}, Line: 80},
		{Name: "plain", Command: "sleep infinity", Line: 92},
	}
	if !reflect.DeepEqual(s.Services, wantServices) {
		t.Errorf("services:\n got %+v\nwant %+v", s.Services, wantServices)
	}
	wantWorkloads := []WorkloadSpec{
		{Name: "alice", Hosts: []string{"a"}, Command: `iperf3 -c {{ ip "b" }} -t 60 -J`, WorkDir: "/tmp",
			Env: map[string]string{"RATE": "1"}, User: "lab", Timeout: 2 * time.Minute, Start: StartCreate, Line: 96},
		{Name: "bobs", Hosts: []string{"a", "b"}, Command: "true", Start: StartCreate, Line: 105},
	}
	if !reflect.DeepEqual(s.Workloads, wantWorkloads) {
		t.Errorf("workloads:\n got %+v\nwant %+v", s.Workloads, wantWorkloads)
	}
	if got, want := s.SourcePath(s.Deploys[1]), filepath.Join("testdata", "full-src", "app.conf"); got != want {
		t.Errorf("source path %q, want %q", got, want)
	}
}

// TestParseKeyLinesMatchTOML checks the line scan against the toml
// library: every key it decodes from full.toml is found on a line that
// names it.
func TestParseKeyLinesMatchTOML(t *testing.T) {
	data, err := os.ReadFile("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	md, err := toml.Decode(string(data), &root)
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Split(string(data), "\n")
	lines := tomlfile.Scan(string(data))
	arrays := map[string]int{} // [[name]] seen so far, as Keys() lists them in order
	checked := 0
	for _, k := range md.Keys() {
		if len(k) == 1 && slices.Contains([]string{"host", "link", "deploy", "service", "workload"}, k[0]) {
			arrays[k[0]]++
			continue
		}
		path := k[0]
		if n := arrays[k[0]]; n > 0 {
			path = fmt.Sprintf("%s[%d]", k[0], n-1)
		}
		path = strings.Join(append([]string{path}, k[1:]...), ".")
		line := lines.Find(path)
		if line == 0 || !strings.Contains(src[line-1], k[len(k)-1]) {
			t.Errorf("key %s (%s) found on line %d, which does not name it", k, path, line)
		}
		checked++
	}
	if checked < 40 {
		t.Errorf("checked only %d keys", checked)
	}
}

// TestSpecBadFiles parses every file in testdata/bad. Each starts with the
// exact error lines it must produce ("# want: file:line: message"), in
// order, and no others.
func TestSpecBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil || len(files) < 20 {
		t.Fatalf("want at least 20 bad files, got %d (%v)", len(files), err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			if len(want) == 0 {
				t.Fatal("no # want: lines")
			}
			s, err := Parse(filepath.Base(path), data)
			if err == nil {
				t.Fatalf("parsed without error: %+v", s)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors: %v", err, err)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml")
	if err == nil || !strings.Contains(err.Error(), "read lab file") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a read error wrapping ErrNotExist", err)
	}
}

func TestParseErrorsUnwrap(t *testing.T) {
	_, err := Parse("lab.toml", []byte("[lab]\nname = \"x\"\n[[host]]\nname = \"a\"\ncpus = 0\nmemory = \"1MiB\"\n"))
	var e *Error
	if !errors.As(err, &e) || e.File != "lab.toml" || e.Line != 5 {
		t.Fatalf("errors.As(*Error) = %+v from %v, want the first error, at line 5", e, err)
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Errorf("want 2 errors, got %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	src := `[lab]
name = "d"
[[host]]
name = "a"
[[host]]
name = "b"
[[host]]
name = "c"
[[link]]
endpoints = ["a", "b"]
[[link]]
endpoints = ["a", "b", "c"]
`
	s, err := Parse("d.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{s.Links[0].Name, s.Links[1].Name}; !reflect.DeepEqual(got, []string{"a-b", "seg1"}) {
		t.Errorf("default link names = %v, want [a-b seg1]", got)
	}
	if h := s.Hosts[0]; h.Kind != "vm" || h.Image != "debian-12" || h.CPUs != 1 || h.MemoryMiB != 512 || h.DiskBytes != 0 {
		t.Errorf("host defaults = %+v", h)
	}
}

func TestParseNames(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
		fix   string
	}{
		{"a", true, "a"},
		{"web-1", true, "web-1"},
		{"a1-b2", true, "a1-b2"},
		{"abcdefghijklmnopqrst", true, "abcdefghijklmnopqrst"},
		{"abcdefghijklmnopqrstu", false, "abcdefghijklmnopqrst"},
		{"", false, ""},
		{"1a", false, "a"},
		{"-a", false, "a"},
		{"a-", false, "a"},
		{"Web_1", false, "web-1"},
		{"a..b", false, "a-b"},
		{"über", false, "ber"},
		{"123", false, ""},
	}
	for _, tt := range tests {
		if got := validName(tt.name, maxHostName); got != tt.valid {
			t.Errorf("validName(%q) = %v, want %v", tt.name, got, tt.valid)
		}
		if got := sanitizeName(tt.name, maxHostName); got != tt.fix {
			t.Errorf("sanitizeName(%q) = %q, want %q", tt.name, got, tt.fix)
		}
		if tt.fix != "" && !validName(tt.fix, maxHostName) {
			t.Errorf("sanitizeName(%q) = %q is not valid", tt.name, tt.fix)
		}
	}
}

func TestParseSuggest(t *testing.T) {
	valid := []string{"name", "kind", "position", "image", "cpus", "memory", "disk", "ssh"}
	tests := []struct{ key, want string }{
		{"memroy", ` (did you mean "memory"?)`},
		{"Name", ` (did you mean "name"?)`},
		{"nmae", ` (did you mean "name"?)`},
		{"cpu", ` (did you mean "cpus"?)`},
		{"postion", ` (did you mean "position"?)`},
		{"flavour", " (valid keys: name, kind, position, image, cpus, memory, disk, ssh)"},
		{"x", " (valid keys: name, kind, position, image, cpus, memory, disk, ssh)"},
	}
	for _, tt := range tests {
		if got := suggest(tt.key, valid); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// The jitter distribution and Gilbert-Elliott burst loss, which every
// shaper implements, can be written in the lab file; left-out model
// parameters default as in tc.
func TestSpecDistributionAndBurstLoss(t *testing.T) {
	s, err := Parse("t.toml", []byte(`
[lab]
name = "t"
[[host]]
name = "a"
[[host]]
name = "b"
[[link]]
name = "ab"
endpoints = ["a", "b"]
delay = "20ms"
jitter = "5ms"
distribution = "pareto"
loss_burst = "1% 30%"
[[link]]
name = "ab2"
endpoints = ["a", "b"]
loss_burst = "2,10,50,0.5"
`))
	if err != nil {
		t.Fatal(err)
	}
	q := s.Links[0].Quality
	if q.Distribution != "pareto" || q.LossBurst != [4]float64{1, 30, 100, 0} {
		t.Errorf("link ab: distribution %q, loss_burst %v", q.Distribution, q.LossBurst)
	}
	if got := s.Links[1].Quality.LossBurst; got != [4]float64{2, 10, 50, 0.5} {
		t.Errorf("link ab2: loss_burst %v", got)
	}
}

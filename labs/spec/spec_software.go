package spec

// The software part of a lab file: what to copy where, which services to
// start and which demo loads to run.
//
//	[[deploy]]              # copy a file or a tree to hosts, atomically, skipping files whose sha256 matches
//	hosts    = ["a", "b"]   # default: every host
//	src      = "build/app"  # required. relative to the lab file's directory. A directory's
//	                        # contents become dst's; a file is written to dst (or into it when dst ends in "/")
//	dst      = "/opt/app"   # required. absolute, its own directory (not "/" or "/opt"), no ".."
//	mode     = "0755"       # every file gets this mode; default: the local modes
//	owner    = "lab:lab"    # user or user:group on the host; default root
//	exclude  = ["*.o"]      # patterns on the relative path and the base name
//	template = false        # render every file as a Go template over the host's facts
//
//	[[service]]             # started in the hosts as systemd units (or forgelab's supervisor
//	                        # where there is no systemd), in file order; create waits for each
//	name          = "web"   # required. letters, digits, _ . -; unique
//	hosts         = ["a"]   # default: every host
//	command       = "/opt/app/server --peers {{ join .Peers \",\" }}"   # required; a template
//	workdir       = "/opt/app"
//	env           = { MODE = "demo" }   # values are templates; FORGELAB_COORD, _LAB, _HOST are set too
//	restart       = "on-failure"        # no | on-failure | on-success | on-abnormal | on-abort | on-watchdog | always
//	user          = "lab"               # default root
//	ready         = "tcp://127.0.0.1:7000"  # or http://..., https://..., cmd:COMMAND; default: ready once running
//	ready_timeout = "60s"
//	uses          = ["/opt/app"]        # a redeploy that changes these restarts the service;
//	                                    # default: workdir and the command's program
//
//	[[workload]]            # run to completion after every service is ready; create does not wait
//	name    = "sender"      # required, unique
//	host    = "a"           # or hosts = ["a", "b"]; one of them is required
//	command = "iperf3 -c {{ ip \"b\" }} -J"   # required; a template. JSON lines on stdout are its metrics
//	workdir, env, user      # as for services (user default: the login user)
//	timeout = "60s"         # default: none
//	start = "create"        # create: started by create; run: by each `forgelab run`, from its start to its end;
//	                        # bench: only by the [bench] modes that name it (forgelab bench)
//
// Templates see the host's facts: .Name, .Lab, .Seed, .Coord, .Host
// (.Host.Mgmt, .Host.Position, .Host.Links), .Hosts (every host), .Peers,
// and the functions ip, ip6, mgmt, peers, join (provision.Render).

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgelab/forgelab/provision"
)

// software reads [[deploy]], [[service]] and [[workload]].
func (p *parser) software(root *table, s *Spec) {
	names := make([]string, len(s.Hosts))
	for i, h := range s.Hosts {
		names[i] = h.Name
	}
	for i, t := range root.tables("deploy") {
		s.Deploys = append(s.Deploys, t.deploy(i, names))
	}
	seen := map[string]int{}
	for i, t := range root.tables("service") {
		s.Services = append(s.Services, t.service(i, names, seen))
	}
	for i, t := range root.tables("workload") {
		s.Workloads = append(s.Workloads, t.workload(i, names, seen))
	}
}

// hostList reads hosts = [...] (nil when absent: every host), checking
// every name.
func (t *table) hostList(key string, names []string) []string {
	list, ok := t.stringOrStrings(key)
	if !ok {
		return nil
	}
	if len(list) == 0 {
		t.errorf(key, `%s is empty (leave it out for every host, or name them: %s = ["a"])`, key, key)
	}
	for i, h := range list {
		switch {
		case !slices.Contains(names, h):
			t.errorf(key, "%s: %q is not a host of this lab (hosts: %s)", key, h, strings.Join(names, ", "))
		case slices.Contains(list[:i], h):
			t.errorf(key, "%s: %q is listed twice", key, h)
		}
	}
	return list
}

func (t *table) deploy(i int, hosts []string) DeploySpec {
	t.what = fmt.Sprintf("deploy #%d", i+1)
	d := DeploySpec{Line: t.line(""), SrcLine: t.line("src")}
	d.Hosts = t.hostList("hosts", hosts)
	if src, ok := t.required("src", `src = "build/app"`); ok {
		d.Src = src
		if src == "" {
			t.errorf("src", `src is empty (write the file or directory to copy, relative to the lab file, like src = "build/app")`)
		}
	}
	if dst, ok := t.required("dst", `dst = "/opt/app"`); ok {
		d.Dst = dst
		if err := provision.CheckDst(dst); err != nil {
			t.errorf("dst", "%v (write an absolute path of a directory of its own, like dst = \"/opt/app\")", err)
		}
	}
	if m, ok := t.fileMode("mode"); ok {
		d.Mode = &m
	}
	if o, ok := t.str("owner"); ok {
		d.Owner = o
		if err := provision.CheckOwner(o); err != nil {
			t.errorf("owner", `%v (write owner = "lab" or owner = "lab:lab")`, err)
		}
	}
	if ex, ok := t.stringOrStrings("exclude"); ok {
		d.Exclude = ex
		for _, pat := range ex {
			if err := provision.CheckExclude(pat); err != nil {
				t.errorf("exclude", "exclude %v", err)
			}
		}
	}
	if b, ok := t.boolean("template"); ok {
		d.Template = b
	}
	t.unknownKeys()
	return d
}

// fileMode reads mode = "0755".
func (t *table) fileMode(key string) (os.FileMode, bool) {
	v, ok := t.value(key)
	if !ok {
		return 0, false
	}
	s, isStr := v.(string)
	if !isStr {
		if n, isInt := v.(int64); isInt {
			t.errorf(key, `%s %d: write the mode as an octal string, like %s = "0755"`, key, n, key)
		} else {
			t.typeError(key, `an octal string like "0755"`, v)
		}
		return 0, false
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		t.errorf(key, `%s %q is not an octal file mode (write it like "0755" or "0644")`, key, s)
		return 0, false
	}
	m := os.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m, true
}

// name reads the required name of a service or workload, unique among
// both (they share the output and unit name space).
func (t *table) swName(kind string, i int, seen map[string]int) string {
	t.what = fmt.Sprintf("%s #%d", kind, i+1)
	name, ok := t.required("name", fmt.Sprintf(`name = "%s%d"`, kind[:1], i+1))
	if !ok {
		return ""
	}
	t.what = fmt.Sprintf("%s %q", kind, name)
	if !provision.ValidName(name) {
		t.errorf("name", "name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 64", name)
		return name
	}
	if line, dup := seen[name]; dup {
		t.errorf("name", "name %q is already used on line %d (services and workloads need unique names)", name, line)
	} else {
		seen[name] = t.line("")
	}
	return name
}

// command reads a required command, a template.
func (t *table) command(key string) string {
	c, ok := t.required(key, `command = "/opt/app/run"`)
	if !ok {
		return ""
	}
	if strings.TrimSpace(c) == "" {
		t.errorf(key, "%s is empty", key)
	}
	t.template(key, c)
	return c
}

func (t *table) template(key, text string) {
	if !strings.Contains(text, "{{") {
		return
	}
	if err := provision.ParseTemplate(key, text); err != nil {
		msg := err.Error()
		// "template: command:1: function "ipp" not defined" -> the part after the position
		if i := strings.Index(msg, key+":"); i >= 0 {
			if j := strings.Index(msg[i+len(key)+1:], ": "); j >= 0 {
				msg = msg[i+len(key)+1+j+2:]
			}
		}
		t.errorf(key, "%s is not a valid template: %s (functions: ip, ip6, mgmt, peers, join)", key, msg)
	}
}

func (t *table) workdir() string {
	w, ok := t.str("workdir")
	if !ok {
		return ""
	}
	if !strings.HasPrefix(w, "/") && !strings.HasPrefix(w, "{{") {
		t.errorf("workdir", `workdir %q is not an absolute path (write it like "/opt/app")`, w)
	}
	t.template("workdir", w)
	return w
}

func (t *table) env() map[string]string {
	et := t.sub("env")
	if et == nil {
		return nil
	}
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(et.m)) {
		v, ok := et.str(k)
		if !ok {
			continue
		}
		if !provision.ValidEnvName(k) {
			et.errorf(k, "env: %q is not a variable name (letters, digits and _, not starting with a digit)", k)
			continue
		}
		if strings.HasPrefix(k, "FORGELAB_") {
			et.errorf(k, "env: %s is set by forgelab (choose another name)", k)
			continue
		}
		et.template(k, v)
		out[k] = v
	}
	return out
}

func (t *table) user() string {
	u, ok := t.str("user")
	if ok && !provision.ValidUser(u) {
		t.errorf("user", "user %q is not a user name", u)
	}
	return u
}

func (t *table) duration(key, example string) time.Duration {
	s, ok := t.unitString(key, example)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.errorf(key, "%s %q is not a duration (write it like %q: ms, s, m, h)", key, s, example)
		return 0
	}
	return d
}

func (t *table) service(i int, hosts []string, seen map[string]int) ServiceSpec {
	s := ServiceSpec{Line: t.line("")}
	s.Name = t.swName("service", i, seen)
	s.Hosts = t.hostList("hosts", hosts)
	s.Command = t.command("command")
	s.WorkDir = t.workdir()
	s.Env = t.env()
	if r, ok := t.str("restart"); ok {
		s.Restart = r
		if !provision.ValidRestart(r) {
			t.errorf("restart", "restart %q is not known (use no, on-failure, on-success, on-abnormal, on-abort, on-watchdog or always)", r)
		}
	}
	s.User = t.user()
	if r, ok := t.str("ready"); ok {
		s.Ready = r
		t.template("ready", r)
		if !strings.Contains(r, "{{") {
			if err := provision.CheckReady(r); err != nil {
				t.errorf("ready", "%v", err)
			}
		}
	}
	s.ReadyTimeout = t.duration("ready_timeout", "60s")
	if u, ok := t.stringOrStrings("uses"); ok {
		s.Uses = u
		for _, p := range u {
			if !strings.HasPrefix(p, "/") {
				t.errorf("uses", "uses: %q is not an absolute path on the host", p)
			}
		}
	}
	t.unknownKeys()
	return s
}

func (t *table) workload(i int, hosts []string, seen map[string]int) WorkloadSpec {
	w := WorkloadSpec{Line: t.line("")}
	w.Name = t.swName("workload", i, seen)
	switch {
	case t.has("host") && t.has("hosts"):
		t.errorf("hosts", "set host or hosts, not both")
	case t.has("host"):
		if h, ok := t.str("host"); ok {
			w.Hosts = []string{h}
			if !slices.Contains(hosts, h) {
				t.errorf("host", "host %q is not a host of this lab (hosts: %s)", h, strings.Join(hosts, ", "))
			}
		}
	case t.has("hosts"):
		w.Hosts = t.hostList("hosts", hosts)
	default:
		t.errorf("", `says nowhere to run: add host = "a" (or hosts = ["a", "b"])`)
	}
	w.Command = t.command("command")
	w.WorkDir = t.workdir()
	w.Env = t.env()
	w.User = t.user()
	w.Timeout = t.duration("timeout", "60s")
	w.Start = StartCreate
	if st, ok := t.str("start"); ok {
		w.Start = st
		if !slices.Contains(Starts, st) {
			t.errorf("start", "start %q is not known (use %s)", st, quotedOr(Starts))
		}
	}
	t.unknownKeys()
	return w
}

// checkSources reports every deploy whose src does not exist, at its line.
// Load runs it (Parse does not touch the filesystem).
func checkSources(s *Spec) error {
	var errs Errors
	for i, d := range s.Deploys {
		if d.Src == "" {
			continue
		}
		if _, err := os.Stat(s.SourcePath(d)); err != nil {
			msg := fmt.Sprintf("deploy #%d: src %q: %v", i+1, d.Src, err)
			if os.IsNotExist(err) {
				msg = fmt.Sprintf("deploy #%d: src %q does not exist (looked for %s; relative paths start at the lab file's directory: build it first, or fix the path)", i+1, d.Src, s.SourcePath(d))
			}
			errs = append(errs, &Error{File: s.File, Line: d.SrcLine, Msg: msg})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

package spec

import (
	"os"
	"path/filepath"
	"slices"
	"time"
)

// DeploySpec is one [[deploy]]: a local file or tree copied to hosts.
type DeploySpec struct {
	Hosts    []string     // nil: every host of the lab
	Src      string       // as written; relative to the lab file's directory
	Dst      string       // absolute path on the host; ending in "/" puts a file into it
	Mode     *os.FileMode // every regular file gets this mode; nil keeps the local modes
	Owner    string       // "user" or "user:group" on the host; "" leaves the login user's (root)
	Exclude  []string     // path.Match patterns on the relative path and on the base name
	Template bool         // render every file as a Go template over the host's facts
	Line     int          // of the [[deploy]] header
	SrcLine  int          // of src, for "src does not exist"
}

// ServiceSpec is one [[service]]: long-running software started on hosts.
type ServiceSpec struct {
	Name         string
	Hosts        []string // nil: every host
	Command      string   // template; run by /bin/sh -c
	WorkDir      string
	Env          map[string]string // values are templates
	Restart      string            // systemd Restart=, default on-failure
	User         string            // "" is root
	Ready        string            // tcp://HOST:PORT, http(s)://URL, cmd:COMMAND; "" ready once running
	ReadyTimeout time.Duration     // 0: 60s
	Uses         []string          // host paths a redeploy restarts it for; default workdir and command
	Line         int
}

// WorkloadSpec is one [[workload]]: a demo load run to completion on hosts
// once every service is ready.
type WorkloadSpec struct {
	Name    string
	Hosts   []string // from host = "a" or hosts = ["a", "b"]
	Command string   // template
	WorkDir string
	Env     map[string]string
	User    string        // "" is the login user
	Timeout time.Duration // 0: until it ends or the lab is destroyed
	// Start is StartCreate (run by create) or StartRun (run by each
	// forgelab run, from its start to its end).
	Start string
	Line  int
}

// HasSoftware reports whether the lab deploys, starts or runs anything.
func (s *Spec) HasSoftware() bool {
	return len(s.Deploys) > 0 || len(s.Services) > 0 || len(s.Workloads) > 0
}

// SourcePath is where a deploy's src is on this machine: relative paths
// are taken from the lab file's directory.
func (s *Spec) SourcePath(d DeploySpec) string {
	return s.Resolve(d.Src)
}

// Resolve turns a path written in the lab file into one usable here:
// "~/" is the user's home, relative paths start at the lab file's
// directory.
func (s *Spec) Resolve(p string) string {
	switch {
	case p == "":
		return ""
	case p == "~" || len(p) > 1 && p[:2] == "~/":
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
		return p
	case filepath.IsAbs(p):
		return p
	}
	return filepath.Join(filepath.Dir(s.File), p)
}

// OnHost reports whether a hosts list (nil: all) includes host.
func OnHost(hosts []string, host string) bool {
	return hosts == nil || slices.Contains(hosts, host)
}

package runs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// File and folder names inside a run folder. They are part of the stable
// format (docs/runs.md): never rename one, add new ones instead.
const (
	MetaFile      = "run.json"      // metadata, status, fingerprint, file list
	LabFile       = "lab.toml"      // the lab file as run
	ScenarioFile  = "scenario.toml" // the scenario as run (absent when the lab file holds it)
	PlanFile      = "plan.json"     // the lab's plan
	EventsFile    = "events.jsonl"  // every change, one JSON object a line
	PositionsFile = "positions.csv" // host positions
	LinksFile     = "links.csv"     // link quality and counters per direction
	HostsFile     = "hosts.csv"     // VM and host resources
	ProcessesFile = "processes.csv" // resources of workloads and services in the hosts (absent without process sampling, and in runs recorded before it)

	WorkloadsDir = "workloads" // <host>-<name>.jsonl, .stdout, .stderr
	ServicesDir  = "services"  // <host>-<name>.log
	SerialDir    = "serial"    // <host>.log
	PcapsDir     = "pcaps"     // *.pcap the scenario asked for
)

// Permissions: a run may hold what workloads printed, environment
// included, so only the owner reads it.
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// idLayout is the time part of a run id: UTC, to the second, so ids sort
// by start time as plain strings.
const idLayout = "20060102T150405Z"

// NewID returns a run id for a run starting at start, like
// 20261201T234512Z-3f2a: sortable by time, and unique thanks to the random
// suffix (Create also refuses to reuse a folder).
func NewID(start time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return start.UTC().Format(idLayout) + "-" + hex.EncodeToString(b[:])
}

// nameRE is what a lab, a run id, a host or a workload may look like when
// it becomes part of a path: no separators, no leading dot, so it can
// never climb out of the run folder.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func validName(s string) bool { return nameRE.MatchString(s) && !strings.Contains(s, "..") }

// checkID reports a run id that cannot name a folder.
func checkID(id string) error {
	if validName(id) {
		return nil
	}
	return fmt.Errorf("%q is not a run id: ids look like 20261201T234512Z-3f2a or LAB/20261201T234512Z-3f2a (forgelab runs ls lists them)", id)
}

// checkName reports a lab, host, workload or file name that cannot be part
// of a path in a run folder.
func checkName(what, s string) error {
	if validName(s) {
		return nil
	}
	return fmt.Errorf("%s %q cannot name a file in a run folder: use letters, digits, '.', '_' and '-', not starting with '.' and without '..' or '/'", what, s)
}

// Root is the folder that holds every lab's runs in a state dir.
func Root(stateDir string) string { return filepath.Join(stateDir, "runs") }

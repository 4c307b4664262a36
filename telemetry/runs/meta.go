package runs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// FormatVersion is the run folder format this package writes. Readers
// accept any folder with a version up to it.
const FormatVersion = 1

// Status is where a run stands.
type Status string

const (
	// StatusRunning: the recorder is writing. A run.json that says running
	// while its recorder process is gone is reported as incomplete.
	StatusRunning Status = "running"
	// StatusComplete: the scenario played to its end and every file was
	// closed.
	StatusComplete Status = "complete"
	// StatusIncomplete: stopped early (Ctrl-C, SIGKILL, a crash); the data
	// up to the stop is there, minus at most the last second.
	StatusIncomplete Status = "incomplete"
	// StatusFailed: the run could not do what it was asked (Reason says
	// why); what it recorded until then is kept.
	StatusFailed Status = "failed"
)

// Meta is run.json.
type Meta struct {
	Format   int    `json:"format"`
	Lab      string `json:"lab"`
	ID       string `json:"id"`
	Scenario string `json:"scenario,omitempty"` // its name (the file's base name without .toml, or the lab's)
	// Variant is the label the user gave this run, e.g. "babeld" or
	// "static": what compare puts next to its figures.
	Variant string `json:"variant,omitempty"`
	// Bench is set on the runs of `forgelab bench`: which mode and point
	// of which bench the run measured.
	Bench  *BenchInfo `json:"bench,omitempty"`
	Start  time.Time  `json:"start"`
	End    time.Time  `json:"end,omitzero"`
	Status Status     `json:"status"`
	Reason string     `json:"reason,omitempty"`
	// Recorder is the process writing the run, to tell a live run from
	// one whose recorder was killed.
	Recorder    Process     `json:"recorder"`
	Fingerprint Fingerprint `json:"fingerprint"`
	// Files lists the folder's data files. It is kept up to date while the
	// run records (within a second of a new file), and row counts are
	// final when the run is closed.
	Files []File `json:"files"`
}

// BenchInfo places a run in a bench (forgelab bench, package labs/bench).
type BenchInfo struct {
	ID    string `json:"id"`              // the bench, shared by all its runs
	Mode  string `json:"mode"`            // the [[bench.mode]] the run measured
	Point string `json:"point,omitempty"` // the [[bench.point]] (link conditions); "" for none
	// Round is the round of the interleaved order, from 1; warm-up
	// rounds count from 1 too, with Warmup set.
	Round  int  `json:"round"`
	Warmup bool `json:"warmup,omitempty"`
}

// File kinds in Meta.Files.
const (
	KindInput    = "input"    // lab file, scenario, plan
	KindTable    = "table"    // CSV with a header
	KindEvents   = "events"   // events.jsonl
	KindWorkload = "workload" // a workload's JSON lines
	KindStdout   = "stdout"   // a workload's raw standard output
	KindStderr   = "stderr"
	KindService  = "service" // a service log
	KindSerial   = "serial"  // a VM's serial console log
	KindPcap     = "pcap"
)

// File is one file of a run folder.
type File struct {
	Path string `json:"path"` // relative to the run folder, with '/'
	Kind string `json:"kind"`
	Host string `json:"host,omitempty"`
	Name string `json:"name,omitempty"` // workload or service name
	// Rows counts data rows (CSV, not the header) or lines (JSON lines,
	// text); absent for binary files.
	Rows  *int64 `json:"rows,omitempty"`
	Bytes int64  `json:"bytes"`
}

// Image is one VM image a run used.
type Image struct {
	Name   string `json:"name"`
	Digest string `json:"digest"` // sha256:...
}

// Fingerprint is the environment a run ran in, so that compare can warn
// when two runs did not run alike.
type Fingerprint struct {
	Kernel      string  `json:"kernel,omitempty"`    // host kernel release
	CPUModel    string  `json:"cpu_model,omitempty"` // from /proc/cpuinfo
	Cores       int     `json:"cores,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	Accel       string  `json:"accel,omitempty"` // kvm or tcg
	Version     string  `json:"forgelab_version,omitempty"`
	Commit      string  `json:"forgelab_commit,omitempty"`
	GoVersion   string  `json:"go_version,omitempty"`
	Images      []Image `json:"images,omitempty"`
	LabSHA256   string  `json:"lab_sha256,omitempty"`
	Seed        int64   `json:"seed"`
	// Notes are free-form findings, e.g. "quiet": "load 0.05, no other
	// VMs", "noise": "allowed by --allow-noise".
	Notes map[string]string `json:"notes,omitempty"`
}

// writeMeta saves run.json atomically (temp file, fsync, rename), so a
// reader never sees half of it and a crash keeps the old or the new one.
func writeMeta(dir string, m *Meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("save %s: %w", MetaFile, err)
	}
	return writeMetaData(dir, data)
}

func writeMetaData(dir string, data []byte) error {
	path := filepath.Join(dir, MetaFile)
	return writeAtomic(path, ".tmp", func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
}

// writeAtomic writes path through a temporary file beside it (path+suffix)
// that is synced and renamed into place, so a reader or a crash sees the
// old file or the new one, never half of one. The temporary is removed on
// failure.
func writeAtomic(path, suffix string, write func(io.Writer) error) error {
	tmp := path + suffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fileMode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Errors a caller may want to tell apart.
var (
	ErrNoRun   = errors.New("no such run")
	ErrDamaged = errors.New("run.json is damaged")
)

// readMeta loads run.json and reports a recorder that died as incomplete.
func readMeta(dir string) (*Meta, error) {
	path := filepath.Join(dir, MetaFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (no %s there; forgelab runs ls lists the runs)", dir, ErrNoRun, MetaFile)
	}
	if err != nil {
		return nil, fmt.Errorf("read run: %w", err)
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w: %v (remove the run with forgelab runs rm, or repair the JSON by hand)", path, ErrDamaged, err)
	}
	if m.Format > FormatVersion {
		return nil, fmt.Errorf("%s: run format %d is newer than this forgelab reads (%d): use a newer forgelab", path, m.Format, FormatVersion)
	}
	if m.Status == StatusRunning && !m.Recorder.Alive() {
		m.Status = StatusIncomplete
		m.Reason = fmt.Sprintf("the recorder (pid %d on %s) ended without closing the run (killed or crashed); data up to about a second before is kept", m.Recorder.PID, m.Recorder.Host)
	}
	return &m, nil
}

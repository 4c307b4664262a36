package runs

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Run is a recorded run opened for reading.
type Run struct {
	Dir  string `json:"dir"`
	Meta Meta   `json:"meta"` // Status is incomplete when the recorder died without Close
}

// Open reads the run in dir.
func Open(dir string) (*Run, error) {
	m, err := readMeta(dir)
	if err != nil {
		return nil, err
	}
	if m.End.IsZero() {
		// Not closed: run.json's counts are from the last time the file
		// list changed, so count again.
		for i, f := range m.Files {
			m.Files[i] = recount(dir, f)
		}
	}
	return &Run{Dir: dir, Meta: *m}, nil
}

// recount takes a file's size and rows from the disk: whole lines only
// (a row cut short by a kill does not count), less the header of a table.
func recount(dir string, f File) File {
	if f.Kind != KindTable && f.Kind != KindEvents && f.Kind != KindWorkload && f.Kind != KindStdout && f.Kind != KindStderr {
		return statFile(dir, f)
	}
	n, _, size, err := scanLines(filepath.Join(dir, filepath.FromSlash(f.Path)))
	if err != nil {
		return f
	}
	if f.Kind == KindTable && n > 0 {
		n--
	}
	f.Rows, f.Bytes = &n, size
	return f
}

// Name is LAB/ID, the way the CLI names a run.
func (r *Run) Name() string { return r.Meta.Lab + "/" + r.Meta.ID }

func (r *Run) path(rel string) string { return filepath.Join(r.Dir, filepath.FromSlash(rel)) }

// table is a CSV file read whole.
type table struct {
	path   string
	header []string
	index  map[string]int
	rows   [][]string
}

// readTable reads a CSV file of a run. A last row cut short by a kill of
// the recorder (no final newline) is dropped: everything before it is
// whole.
func readTable(path string) (*table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		data = data[:i+1]
	}
	cr := csv.NewReader(bytes.NewReader(data))
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (the file is not the CSV forgelab writes)", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("read %s: no header row (the file is empty)", path)
	}
	t := &table{path: path, header: recs[0], index: map[string]int{}, rows: recs[1:]}
	for i, h := range t.header {
		t.index[h] = i
	}
	if t.index[ColTime] != 0 || t.index[ColT] != 1 || len(t.header) < 2 {
		return nil, fmt.Errorf("read %s: the header must start with %q and %q", path, ColTime, ColT)
	}
	return t, nil
}

// readHeader reads only the header row of a CSV file.
func readHeader(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := csv.NewReader(bufio.NewReader(f)).Read()
	if err != nil {
		return nil, fmt.Errorf("read %s: no header row: %w", path, err)
	}
	return h, nil
}

// stamp parses a row's time and t.
func (t *table) stamp(i int) (time.Time, float64, error) {
	row := t.rows[i]
	at, err := time.Parse(time.RFC3339Nano, row[0])
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("%s row %d: time %q: %w", t.path, i+2, row[0], err)
	}
	secs, err := strconv.ParseFloat(row[1], 64)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("%s row %d: t %q: %w", t.path, i+2, row[1], err)
	}
	return at, secs, nil
}

// readRows decodes every row of a table by its schema. Columns the file
// lacks stay empty (labels) or NaN (values), so older and newer files
// read alike.
func readRows[T any, R any](path string, s schema[T], mk func(time.Time, float64, T) R) ([]R, error) {
	t, err := readTable(path)
	if err != nil {
		return nil, err
	}
	out := make([]R, 0, len(t.rows))
	for i, row := range t.rows {
		at, secs, err := t.stamp(i)
		if err != nil {
			return nil, err
		}
		var v T
		for _, c := range s.labels {
			if j, ok := t.index[c.name]; ok {
				*c.ptr(&v) = row[j]
			}
		}
		for _, c := range s.values {
			cell := ""
			if j, ok := t.index[c.name]; ok {
				cell = row[j]
			}
			f, err := parseFloat(cell)
			if err != nil {
				return nil, fmt.Errorf("%s row %d: %s: %w", path, i+2, c.name, err)
			}
			*c.ptr(&v) = f
		}
		out = append(out, mk(at, secs, v))
	}
	return out, nil
}

// Positions reads positions.csv.
func (r *Run) Positions() ([]PositionRow, error) {
	return readRows(r.path(PositionsFile), positionSchema, func(at time.Time, t float64, p Position) PositionRow {
		return PositionRow{Time: at, T: t, Position: p}
	})
}

// Links reads links.csv.
func (r *Run) Links() ([]LinkRow, error) {
	return readRows(r.path(LinksFile), linkSchema, func(at time.Time, t float64, s LinkSample) LinkRow {
		return LinkRow{Time: at, T: t, LinkSample: s}
	})
}

// Hosts reads hosts.csv.
func (r *Run) Hosts() ([]HostRow, error) {
	return readRows(r.path(HostsFile), hostSchema, func(at time.Time, t float64, s HostSample) HostRow {
		return HostRow{Time: at, T: t, HostSample: s}
	})
}

// Processes reads processes.csv; a run recorded without process
// sampling (or by an older forgelab) has none, and that is not an error.
func (r *Run) Processes() ([]ProcessRow, error) {
	if _, err := os.Stat(r.path(ProcessesFile)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return readRows(r.path(ProcessesFile), processSchema, func(at time.Time, t float64, s ProcessSample) ProcessRow {
		return ProcessRow{Time: at, T: t, ProcessSample: s}
	})
}

// Events reads events.jsonl.
func (r *Run) Events() ([]Event, error) {
	var out []Event
	err := readLines(r.path(EventsFile), func(line []byte) error {
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// WorkloadRecord is one JSON line of a workload.
type WorkloadRecord struct {
	Time time.Time
	T    float64
	// Fields are the workload's own keys (numbers as json.Number, so
	// integers stay exact); a key it named "time" or "t" is under
	// "workload_time" or "workload_t".
	Fields map[string]any
}

// Workloads lists the workloads that printed JSON lines, from run.json.
func (r *Run) Workloads() []File {
	var out []File
	for _, f := range r.Meta.Files {
		if f.Kind == KindWorkload {
			out = append(out, f)
		}
	}
	return out
}

// Workload reads the JSON lines of workload name on host.
func (r *Run) Workload(host, name string) ([]WorkloadRecord, error) {
	base, err := workloadBase(host, name)
	if err != nil {
		return nil, err
	}
	var out []WorkloadRecord
	err = readLines(r.path(base+".jsonl"), func(line []byte) error {
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return err
		}
		var rec WorkloadRecord
		ts, _ := m[keyTime].(string)
		var err error
		if rec.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return fmt.Errorf("time %q: %w", ts, err)
		}
		n, _ := m[keyT].(json.Number)
		if rec.T, err = n.Float64(); err != nil {
			return fmt.Errorf("t %q: %w", n, err)
		}
		delete(m, keyTime)
		delete(m, keyT)
		rec.Fields = m
		out = append(out, rec)
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("run %s has no JSON lines from workload %s on host %s (forgelab runs show %s lists its files): %w", r.Name(), name, host, r.Name(), err)
	}
	return out, err
}

// readLines calls f for each whole line of a JSON lines file; a last line
// cut short by a kill is skipped.
func readLines(path string, f func([]byte) error) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	br := bufio.NewReaderSize(in, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read %s: %w", path, err)
		}
		last := err == io.EOF
		if last && !json.Valid(line) {
			return nil // empty, or a line cut short by a kill
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if ferr := f(line); ferr != nil {
				return fmt.Errorf("%s line %d: %w", path, n, ferr)
			}
		}
		if last {
			return nil
		}
	}
}

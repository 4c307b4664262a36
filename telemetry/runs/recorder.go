package runs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// FlushInterval is how often a Recorder moves buffered rows to disk: the
// most a killed run loses.
const FlushInterval = time.Second

// Recorder writes one run folder. Every method is safe for concurrent
// callers. Appends (Event, Position, Links, Host, WorkloadLine) only
// buffer in memory, so they never wait for the disk; a background flusher
// writes the buffers at least once a second and Close writes the rest.
type Recorder struct {
	dir   string
	start time.Time

	events, positions, links, hosts *sink

	metaMu  sync.Mutex // serialises writes of run.json; taken before mu
	mu      sync.Mutex // guards meta, byPath, sinks, copied, dirty
	meta    Meta
	byPath  map[string]*sink // lazily made files (workloads), by relative path
	sinks   []*sink          // every sink, in creation order
	copied  []File           // files copied in whole
	dirty   bool             // the file list changed since run.json was written
	closed  atomic.Bool
	closing sync.Once

	stop chan struct{}
	done chan struct{}
}

// Create makes the folder <root>/<lab>/<id> (id from meta.ID, or a new one
// from meta.Start) and starts recording: run.json says running, with this
// process as the recorder, until Close. meta.Lab is required; Start
// defaults to now; the fingerprint's host fields default to
// HostFingerprint's. Pass Root(stateDir) as root.
func Create(root string, meta Meta) (*Recorder, error) {
	if err := checkName("lab", meta.Lab); err != nil {
		return nil, fmt.Errorf("record run: %w", err)
	}
	if meta.Start.IsZero() {
		meta.Start = time.Now()
	}
	labDir := filepath.Join(root, meta.Lab)
	if err := os.MkdirAll(labDir, dirMode); err != nil {
		return nil, fmt.Errorf("record run: %w (is the state dir writable? --state-dir picks another)", err)
	}
	dir, id, err := makeRunDir(labDir, meta.ID, meta.Start)
	if err != nil {
		return nil, err
	}
	// t is measured on the caller's clock reading (monotonic when it came
	// from time.Now); run.json gets the wall time in UTC.
	start := meta.Start
	meta.ID = id
	meta.Format = FormatVersion
	meta.Start = meta.Start.UTC()
	meta.End = time.Time{}
	meta.Status, meta.Reason = StatusRunning, ""
	meta.Recorder = self()
	meta.Fingerprint.fillHost()
	meta.Files = nil
	r := &Recorder{dir: dir, start: start, meta: meta, byPath: map[string]*sink{},
		stop: make(chan struct{}), done: make(chan struct{})}
	fail := func(err error) (*Recorder, error) {
		r.closeSinks()
		os.RemoveAll(dir) // half a run folder would list as a damaged run
		return nil, fmt.Errorf("record run: %w", err)
	}
	for _, s := range []struct {
		p      **sink
		path   string
		kind   string
		header []string
	}{
		{&r.events, EventsFile, KindEvents, nil},
		{&r.positions, PositionsFile, KindTable, positionSchema.header()},
		{&r.links, LinksFile, KindTable, linkSchema.header()},
		{&r.hosts, HostsFile, KindTable, hostSchema.header()},
	} {
		sk, err := openSink(dir, File{Path: s.path, Kind: s.kind}, s.header)
		if err != nil {
			return fail(err)
		}
		*s.p = sk
		r.sinks = append(r.sinks, sk)
	}
	if err := r.flushAll(); err != nil {
		return fail(err)
	}
	r.meta.Files = r.fileList()
	if err := writeMeta(dir, &r.meta); err != nil {
		return fail(err)
	}
	go r.flusher()
	return r, nil
}

// makeRunDir creates the run folder; a new id is drawn when a generated
// one is taken.
func makeRunDir(labDir, id string, start time.Time) (dir, gotID string, err error) {
	generated := id == ""
	for range 8 {
		if generated {
			id = NewID(start)
		}
		if err := checkID(id); err != nil {
			return "", "", fmt.Errorf("record run: %w", err)
		}
		dir = filepath.Join(labDir, id)
		err = os.Mkdir(dir, dirMode)
		if err == nil {
			return dir, id, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", "", fmt.Errorf("record run: %w (is the state dir writable? --state-dir picks another)", err)
		}
		if !generated {
			return "", "", fmt.Errorf("record run: %s exists: a run folder is never reused (leave the id empty for a new one)", dir)
		}
	}
	return "", "", fmt.Errorf("record run: no free run id in %s: %w", labDir, err)
}

// Dir is the run folder.
func (r *Recorder) Dir() string { return r.dir }

// ID is the run id.
func (r *Recorder) ID() string { return r.meta.ID }

// Start is the moment t = 0 of the run; pass times on the same clock
// (time.Now) to the appends.
func (r *Recorder) Start() time.Time { return r.start }

// since is a sample's t: seconds from the start of the run.
func (r *Recorder) since(at time.Time) float64 { return at.Sub(r.start).Seconds() }

func (r *Recorder) stamp(at time.Time) (time.Time, float64) {
	if at.IsZero() {
		at = time.Now()
	}
	return at, r.since(at)
}

// Position records where hosts are at a moment (zero at: now).
func (r *Recorder) Position(at time.Time, ps ...Position) error {
	at, t := r.stamp(at)
	for i := range ps {
		if err := r.positions.appendRecord(positionSchema.record(at, t, &ps[i])); err != nil {
			return err
		}
	}
	return nil
}

// Links records every link direction of a shaper's state. Call it at least
// once a second and after each quality change.
func (r *Recorder) Links(at time.Time, st netfabric.State) error {
	return r.LinkSample(at, LinkSamples(st)...)
}

// LinkSample records link directions given as samples.
func (r *Recorder) LinkSample(at time.Time, ss ...LinkSample) error {
	at, t := r.stamp(at)
	for i := range ss {
		if err := r.links.appendRecord(linkSchema.record(at, t, &ss[i])); err != nil {
			return err
		}
	}
	return nil
}

// Host records hosts' resources.
func (r *Recorder) Host(at time.Time, hs ...HostSample) error {
	at, t := r.stamp(at)
	for i := range hs {
		if err := r.hosts.appendRecord(hostSchema.record(at, t, &hs[i])); err != nil {
			return err
		}
	}
	return nil
}

// Process records workloads' and services' resources in processes.csv,
// which is made on the first call (runs without sampling have none).
func (r *Recorder) Process(at time.Time, ps ...ProcessSample) error {
	s, err := r.lazyTable(File{Path: ProcessesFile, Kind: KindTable}, processSchema.header())
	if err != nil {
		return err
	}
	at, t := r.stamp(at)
	for i := range ps {
		if err := s.appendRecord(processSchema.record(at, t, &ps[i])); err != nil {
			return err
		}
	}
	return nil
}

// SetNote adds a free-form note to the fingerprint (for example what the
// quiet-environment check saw); it is saved with the next flush.
func (r *Recorder) SetNote(key, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.meta.Fingerprint.Notes == nil {
		r.meta.Fingerprint.Notes = map[string]string{}
	}
	r.meta.Fingerprint.Notes[key] = value
	r.dirty = true
}

// lazySink returns the sink for path, creating it on first use.
func (r *Recorder) lazySink(file File) (*sink, error) { return r.lazyTable(file, nil) }

// lazyTable is lazySink with a header row for a new table.
func (r *Recorder) lazyTable(file File, header []string) (*sink, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.byPath[file.Path]; s != nil {
		return s, nil
	}
	if r.closed.Load() {
		return nil, ErrClosed
	}
	s, err := openSink(r.dir, file, header)
	if err != nil {
		return nil, err
	}
	r.byPath[file.Path] = s
	r.sinks = append(r.sinks, s)
	r.dirty = true
	return s, nil
}

// flusher writes buffers every FlushInterval until Close.
func (r *Recorder) flusher() {
	defer close(r.done)
	tick := time.NewTicker(FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
			_ = r.Flush() // errors are sticky in each sink; Close returns them
		}
	}
}

// Flush writes every buffered row to disk now, and run.json when the list
// of files changed.
func (r *Recorder) Flush() error {
	err := r.flushAll()
	r.metaMu.Lock()
	defer r.metaMu.Unlock()
	r.mu.Lock()
	if !r.dirty || r.closed.Load() {
		r.mu.Unlock()
		return err
	}
	r.meta.Files = r.fileListLocked()
	data, merr := json.MarshalIndent(&r.meta, "", "  ")
	r.dirty = false
	r.mu.Unlock()
	// The disk write happens outside mu, so appends that need mu (a new
	// workload's first line) do not wait for an fsync.
	if merr == nil {
		merr = writeMetaData(r.dir, data)
	}
	if merr != nil {
		r.mu.Lock()
		r.dirty = true // try again at the next flush
		r.mu.Unlock()
		return errors.Join(err, merr)
	}
	return err
}

func (r *Recorder) flushAll() error { return r.eachSink((*sink).flush) }

// eachSink calls f on every sink, from a snapshot of the list so that f
// runs without r.mu, and joins the errors.
func (r *Recorder) eachSink(f func(*sink) error) error {
	r.mu.Lock()
	sinks := append([]*sink(nil), r.sinks...)
	r.mu.Unlock()
	var errs []error
	for _, s := range sinks {
		errs = append(errs, f(s))
	}
	return errors.Join(errs...)
}

func (r *Recorder) fileList() []File {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fileListLocked()
}

func (r *Recorder) fileListLocked() []File {
	var files []File
	for _, f := range r.copied {
		files = append(files, statFile(r.dir, f))
	}
	for _, s := range r.sinks {
		files = append(files, s.info())
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files
}

func (r *Recorder) closeSinks() error { return r.eachSink((*sink).close) }

// Close ends the run: it writes every buffer, syncs every file, and saves
// run.json with the end time, the status (complete, incomplete after a
// Ctrl-C, failed) with its reason, and the final file list. Further calls
// do nothing and return nil.
func (r *Recorder) Close(status Status, reason string) error {
	switch status {
	case StatusComplete, StatusIncomplete, StatusFailed:
	default:
		return fmt.Errorf("close run %s: status %q: want complete, incomplete or failed", r.meta.ID, status)
	}
	var err error
	ran := false
	r.closing.Do(func() {
		ran = true
		r.mu.Lock()
		r.closed.Store(true)
		r.mu.Unlock()
		close(r.stop)
		<-r.done // before metaMu: the flusher may be waiting for it
		err = r.closeSinks()
		r.metaMu.Lock()
		defer r.metaMu.Unlock()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.meta.End = time.Now().UTC()
		r.meta.Status, r.meta.Reason = status, reason
		if err != nil && status == StatusComplete {
			r.meta.Status = StatusIncomplete
			r.meta.Reason = "writing the run failed: " + err.Error()
		}
		r.meta.Files = r.fileListLocked()
		err = errors.Join(err, writeMeta(r.dir, &r.meta))
		if err != nil {
			err = fmt.Errorf("close run %s: %w", r.meta.ID, err)
		}
	})
	if !ran {
		return nil
	}
	return err
}

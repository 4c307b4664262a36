package runs

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by a Recorder's methods after Close.
var ErrClosed = errors.New("run recorder is closed")

// sink is one append-only file of a run. Appends go to a memory buffer
// under a short lock, so a caller never waits for the disk; flush moves the
// buffer to the file, at least once a second (Recorder's flusher) and on
// Close. A kill loses at most what was buffered since the last flush.
type sink struct {
	file File // Path, Kind, Host, Name for run.json
	f    *os.File

	mu     sync.Mutex // guards the fields below; held only for memory work
	buf    bytes.Buffer
	cw     *csv.Writer // tables only; writes into buf
	rows   int64
	closed bool

	wmu     sync.Mutex   // serialises flushes so chunks reach the file in order
	written atomic.Int64 // bytes in the file; atomic so info never waits on a write
	err     error        // first write error
}

// openSink creates a new file in dir (it must not exist: a run folder is
// never written twice) and, for tables, writes the header.
func openSink(dir string, file File, header []string) (*sink, error) {
	path := filepath.Join(dir, filepath.FromSlash(file.Path))
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, fileMode)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	s := &sink{file: file, f: f}
	if header != nil {
		s.cw = csv.NewWriter(&s.buf)
		s.cw.Write(header)
		s.cw.Flush()
	}
	return s, nil
}

// appendRecord adds one CSV row.
func (s *sink) appendRecord(rec []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.cw.Write(rec) // into memory: cannot fail
	s.cw.Flush()
	s.rows++
	return nil
}

// appendLine adds one line; line must not hold a newline.
func (s *sink) appendLine(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.buf.Write(line)
	s.buf.WriteByte('\n')
	s.rows++
	return nil
}

// flush writes what is buffered to the file.
func (s *sink) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	chunk := bytes.Clone(s.buf.Bytes())
	s.buf.Reset()
	s.mu.Unlock()
	if len(chunk) == 0 || s.f == nil {
		return s.err
	}
	n, err := s.f.Write(chunk)
	s.written.Add(int64(n))
	if err != nil && s.err == nil {
		// The chunk is dropped rather than kept: memory must not grow
		// without bound on a full disk. Close reports the error.
		s.err = fmt.Errorf("write %s: %w", s.file.Path, err)
	}
	return s.err
}

// close refuses further appends, flushes, syncs and closes the file.
func (s *sink) close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	err := s.flush()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.f == nil {
		return err
	}
	// fsync at the end only: data written before a kill of the process is
	// in the kernel already; the sync guards a finished run against a
	// crash of the machine.
	err = errors.Join(err, s.f.Sync(), s.f.Close())
	s.f = nil
	return err
}

// info is the sink's entry for run.json.
func (s *sink) info() File {
	s.mu.Lock()
	rows := s.rows
	s.mu.Unlock()
	f := s.file
	f.Rows = &rows
	f.Bytes = s.written.Load()
	return f
}

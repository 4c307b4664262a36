package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Event is one change to a running lab, one line of events.jsonl.
type Event struct {
	Time time.Time `json:"time"`
	// Source is who asked: "cli", "scenario", "api", ...
	Source string `json:"source"`
	// Action names the change, e.g. "link.set", "partition", "host.pause".
	Action string `json:"action"`
	// Args are the action's arguments as the caller gave them, after
	// validation (e.g. link, from, and the quality that was set).
	Args map[string]any `json:"args,omitempty"`
	// Result is "ok" or "error"; Error says why it failed.
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// Event results.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// AppendEvent adds one line to a lab's event log. One write of one line
// in append mode: lines from concurrent writers never interleave.
func (s *Store) AppendEvent(lab string, e Event) error {
	l, err := s.Lab(lab)
	if err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("event log of %s: %w", lab, err)
	}
	f, err := os.OpenFile(l.Events(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("event log of %s: %w", lab, err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("event log of %s: %w", lab, err)
	}
	return f.Close()
}

// Events reads a lab's event log, oldest first.
func (s *Store) Events(lab string) ([]Event, error) {
	l, err := s.Lab(lab)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(l.Events())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return out, fmt.Errorf("%s:%d: %w", l.Events(), n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

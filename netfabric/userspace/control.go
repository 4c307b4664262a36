package userspace

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// The control protocol: over a unix socket, one JSON request per line and
// one JSON response per line. After a successful "capture" response the
// connection carries a pcap stream until either side closes it.
//
//	{"op":"set","link":"ab","from":"a","quality":{"delay_ns":20000000}}
//	{"op":"up","link":"ab"}  {"op":"down","link":"ab"}
//	{"op":"partition","groups":[["a"],["b","c"]]}  {"op":"heal"}
//	{"op":"show"}  {"op":"ping"}  {"op":"capture","link":"ab"}  {"op":"shutdown"}
//
// A timed schedule travels as one request, or for a big one as parts
// 0..parts-1 sent in order on one connection; the engine checks and
// starts it when the last part arrives, so a connection lost halfway
// changes nothing:
//
//	{"op":"schedule","start":"2026-12-01T10:00:00.5Z","part":0,"parts":2,
//	 "changes":[{"at_ns":0,"link":"ab","quality":{"delay_ns":1000000}}, ...]}
//	{"op":"schedule-cancel"}  {"op":"schedule-status","since":0}
type request struct {
	Op      string                `json:"op"`
	Link    string                `json:"link,omitempty"`
	From    string                `json:"from,omitempty"`
	Quality *netfabric.Impairment `json:"quality,omitempty"`
	Groups  [][]string            `json:"groups,omitempty"`

	// schedule
	Start   *time.Time              `json:"start,omitempty"`
	Changes []netfabric.TimedChange `json:"changes,omitempty"`
	Part    int                     `json:"part,omitempty"`
	Parts   int                     `json:"parts,omitempty"` // 0 or 1: the whole schedule in this request
	// schedule-status
	Since int `json:"since,omitempty"`
}

type response struct {
	Error    string                    `json:"error,omitempty"`
	Kind     string                    `json:"kind,omitempty"` // unknown_link, unknown_host, unsupported
	State    *netfabric.State          `json:"state,omitempty"`
	PID      int                       `json:"pid,omitempty"`
	Schedule *netfabric.ScheduleStatus `json:"schedule,omitempty"`
}

// scheduleParts collects the parts of one schedule on one connection.
type scheduleParts struct {
	start   time.Time
	parts   int
	got     int
	changes []netfabric.TimedChange
}

// add takes one part and returns the whole schedule once the last part
// is in (done).
func (sp *scheduleParts) add(req request) (start time.Time, changes []netfabric.TimedChange, done bool, err error) {
	if req.Start == nil {
		return start, nil, false, errors.New("schedule: no start time given")
	}
	if req.Parts <= 1 {
		*sp = scheduleParts{}
		return *req.Start, req.Changes, true, nil
	}
	if req.Part == 0 {
		*sp = scheduleParts{start: *req.Start, parts: req.Parts}
	} else if req.Part != sp.got || req.Parts != sp.parts || !req.Start.Equal(sp.start) {
		*sp = scheduleParts{}
		return start, nil, false, fmt.Errorf("schedule: part %d of %d arrived out of order (send parts 0..%d in order on one connection)", req.Part, req.Parts, req.Parts-1)
	}
	if len(sp.changes)+len(req.Changes) > netfabric.MaxScheduleChanges {
		*sp = scheduleParts{}
		return start, nil, false, fmt.Errorf("schedule: more than %d changes (sample less often, raise the quality threshold or split the run)", netfabric.MaxScheduleChanges)
	}
	sp.changes = append(sp.changes, req.Changes...)
	sp.got++
	if sp.got < sp.parts {
		return start, nil, false, nil
	}
	start, changes = sp.start, sp.changes
	*sp = scheduleParts{}
	return start, changes, true, nil
}

var errorKinds = map[string]error{
	"unknown_link": netfabric.ErrUnknownLink,
	"unknown_host": netfabric.ErrUnknownHost,
	"unsupported":  netfabric.ErrUnsupported,
}

// Serve runs the engine for cfg and answers control requests on sockPath
// until ctx ends or a client asks it to shut down. It is the body of the
// hidden `forgelab fabricd` command, which runs it in a detached process
// for the lifetime of a lab.
func Serve(ctx context.Context, cfg Config, sockPath string) error {
	e, err := New(cfg)
	if err != nil {
		return err
	}
	ln, err := listenUnix(sockPath)
	if err != nil {
		e.Stop()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.Start()

	var conns sync.WaitGroup
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	engineErr := make(chan error, 1)
	go func() {
		select {
		case err := <-e.errs:
			engineErr <- err
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			break // listener closed: shutting down
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			serveConn(ctx, e, c, cancel)
		}()
	}
	e.Stop()
	os.Remove(sockPath)
	conns.Wait()
	select {
	case err := <-engineErr:
		return fmt.Errorf("fabric engine: %w", err)
	default:
		return nil
	}
}

// listenUnix listens on path, replacing a stale socket file left by a
// crashed daemon but never one a live daemon still answers on.
func listenUnix(path string) (net.Listener, error) {
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("a fabric daemon already serves %s", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

func serveConn(ctx context.Context, e *Engine, c net.Conn, shutdown func()) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	enc := json.NewEncoder(w)
	var parts scheduleParts
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var req request
		var resp response
		if err := json.Unmarshal(line, &req); err != nil {
			resp.Error = fmt.Sprintf("bad request: %v", err)
		} else if req.Op == "capture" {
			if _, err := e.link(req.Link); err != nil {
				resp = errResponse(err)
			} else {
				// Answer first, then stream until the client goes away.
				if enc.Encode(response{}) != nil || w.Flush() != nil {
					return
				}
				cctx, ccancel := context.WithCancel(ctx)
				go func() { // the client closing its end ends the capture
					_, _ = io.Copy(io.Discard, r)
					ccancel()
				}()
				_ = e.Capture(cctx, req.Link, w)
				ccancel()
				return
			}
		} else if req.Op == "schedule" {
			start, changes, done, err := parts.add(req)
			if err == nil && done {
				err = e.Schedule(ctx, start, changes)
			}
			if err != nil {
				resp = errResponse(err)
			}
		} else {
			resp = handle(ctx, e, req)
		}
		if enc.Encode(resp) != nil || w.Flush() != nil {
			return
		}
		if req.Op == "shutdown" && resp.Error == "" {
			shutdown()
			return
		}
	}
}

func handle(ctx context.Context, e *Engine, req request) response {
	var err error
	var resp response
	switch req.Op {
	case "ping":
		resp.PID = os.Getpid()
	case "set":
		if req.Quality == nil {
			err = errors.New("set: no quality given")
			break
		}
		err = e.Set(ctx, req.Link, req.From, *req.Quality)
	case "up", "down":
		err = e.SetUp(ctx, req.Link, req.Op == "up")
	case "partition":
		err = e.Partition(ctx, req.Groups)
	case "heal":
		err = e.Heal(ctx)
	case "reseed":
		err = e.Reseed(ctx)
	case "show":
		var st netfabric.State
		st, err = e.Show(ctx)
		resp.State = &st
	case "schedule-cancel":
		err = e.CancelSchedule(ctx)
	case "schedule-status":
		var st netfabric.ScheduleStatus
		st, err = e.ScheduleStatus(ctx, req.Since)
		resp.Schedule = &st
	case "shutdown":
	default:
		// Unsupported, so a newer client can tell and fall back.
		err = fmt.Errorf("%w: unknown operation %q (an older fabric daemon? restart the lab's fabric)", netfabric.ErrUnsupported, req.Op)
	}
	if err != nil {
		return errResponse(err)
	}
	return resp
}

func errResponse(err error) response {
	r := response{Error: err.Error()}
	for k, v := range errorKinds {
		if errors.Is(err, v) {
			r.Kind = k
		}
	}
	return r
}

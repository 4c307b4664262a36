package serve

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/forgelab/forgelab/telemetry/backend"
)

// A feed reads one lab once per tick and hands the encoded frames to every
// client streaming that lab at that interval: ten open pages cost the labs
// what one does.
type feeds struct {
	s  *Server
	mu sync.Mutex
	m  map[feedKey]*feed
}

type feedKey struct {
	lab      string
	interval time.Duration
}

type feed struct {
	key    feedKey
	cancel context.CancelFunc
	mu     sync.Mutex
	subs   map[*sub]bool
	cursor int64 // events up to here have been sent as frames
}

// sub is one client's queue. A client too slow to take its frames is
// dropped (its channel closed); the browser's EventSource reconnects.
type sub struct {
	ch chan frame
}

type frame struct {
	event string
	data  []byte
}

// subQueue frames a client may lag behind before it is dropped.
const subQueue = 16

// join subscribes to lab's feed at interval, starting it if needed, and
// returns the event cursor from which the feed's frames carry events (the
// client reads the backlog up to there itself).
func (fs *feeds) join(ctx context.Context, lab string, interval time.Duration) (*sub, int64, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	k := feedKey{lab, interval}
	f := fs.m[k]
	if f == nil {
		// The feed starts at the end of the event log: older events are
		// each client's backlog.
		_, end, err := fs.s.b.Events(ctx, lab, 0, 0)
		if err != nil {
			return nil, 0, err
		}
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &feed{key: k, cancel: cancel, subs: map[*sub]bool{}, cursor: end}
		fs.m[k] = f
		go fs.run(fctx, f)
	}
	s := &sub{ch: make(chan frame, subQueue)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[s] = true
	return s, f.cursor, nil
}

// leave unsubscribes; the last one out stops the feed.
func (fs *feeds) leave(lab string, interval time.Duration, s *sub) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	k := feedKey{lab, interval}
	f := fs.m[k]
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs[s] {
		delete(f.subs, s)
		close(s.ch)
	}
	if len(f.subs) == 0 {
		f.cancel()
		delete(fs.m, k)
	}
}

// broadcast queues a frame for every client, dropping those whose queue
// is full.
func (f *feed) broadcast(fr frame) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		select {
		case s.ch <- fr:
		default:
			delete(f.subs, s)
			close(s.ch)
		}
	}
}

func encode(event string, v any) frame {
	data, err := json.Marshal(v)
	if err != nil {
		data, _ = json.Marshal(apiError{Error: err.Error()})
		event = "error"
	}
	return frame{event, data}
}

func (fs *feeds) run(ctx context.Context, f *feed) {
	tick := time.NewTicker(f.key.interval)
	defer tick.Stop()
	last := ""
	for {
		f.mu.Lock()
		cursor := f.cursor
		f.mu.Unlock()
		snap, t, err := fs.s.snapshot(ctx, f.key.lab, &cursor)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, backend.ErrNotFound):
			// Destroyed: tell everyone, and end.
			fs.mu.Lock()
			if fs.m[f.key] == f {
				delete(fs.m, f.key)
			}
			fs.mu.Unlock()
			f.broadcast(encode("gone", map[string]string{"lab": f.key.lab}))
			f.mu.Lock()
			for s := range f.subs {
				delete(f.subs, s)
				close(s.ch)
			}
			f.mu.Unlock()
			return
		case err != nil:
			f.broadcast(encode("error", apiError{Error: err.Error()}))
		default:
			if sh := shape(t); sh != last {
				if last != "" {
					f.broadcast(encode("topology", t))
				}
				last = sh
			}
			f.mu.Lock()
			f.cursor = cursor
			f.mu.Unlock()
			f.broadcast(encode("snapshot", snap))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

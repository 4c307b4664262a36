// Package coord is the lab's coordination service: a small HTTP server on
// the management network that workloads on every host use out of band, to
// share values, meet at barriers and wait for each other. It keeps
// everything in memory for the life of the lab.
//
// From a shell in a guest (forgelab sets FORGELAB_COORD=http://ADDR:PORT in
// the environment of services and workloads):
//
//	# key/value
//	curl -fsS -X PUT --data-binary "$(hostname -I)" "$FORGELAB_COORD/kv/addr/a"
//	curl -fsS "$FORGELAB_COORD/kv/addr/a"                     # 404 when unset
//	curl -fsS "$FORGELAB_COORD/kv/addr/a?wait=60s"            # waits until it is set
//	curl -fsS "$FORGELAB_COORD/kv/addr/a?wait=60s&after=3"    # waits for a version > 3 (X-Version header)
//	curl -fsS -X DELETE "$FORGELAB_COORD/kv/addr/a"
//
//	# barrier: returns when 2 callers have arrived (408 after wait)
//	curl -fsS -X POST "$FORGELAB_COORD/barrier/start?n=2&wait=120s"
//
//	# "wait until N peers are ready": each peer signals, anyone waits
//	curl -fsS -X POST "$FORGELAB_COORD/signal/ready"           # prints the new count
//	curl -fsS "$FORGELAB_COORD/signal/ready?n=3&wait=120s"     # returns when the count is >= 3
//
// Waits end with 408 Request Timeout and a message when they run out; curl
// -f turns that into exit status 22, so scripts can `|| exit 1`.
package coord

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limits of the service.
const (
	MaxValue       = 1 << 20          // bytes per value
	MaxWait        = 30 * time.Minute // longest wait a request may ask for
	DefaultBarrier = 5 * time.Minute  // barrier and signal wait when none is given
)

// Server is the coordination service. The zero value is not usable; use New.
type Server struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change: wakes all waiters
	kv       map[string]value
	version  uint64
	barriers map[string]*barrier
	signals  map[string]int
	mux      *http.ServeMux
}

type value struct {
	data    []byte
	version uint64
}

type barrier struct {
	n          int
	arrived    int
	generation uint64 // counts releases; a waiter is released when it changes
}

// New returns an empty service.
func New() *Server {
	s := &Server{
		changed:  make(chan struct{}),
		kv:       map[string]value{},
		barriers: map[string]*barrier{},
		signals:  map[string]int{},
		mux:      http.NewServeMux(),
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("PUT /kv/{key...}", s.put)
	s.mux.HandleFunc("GET /kv/{key...}", s.get)
	s.mux.HandleFunc("DELETE /kv/{key...}", s.del)
	s.mux.HandleFunc("POST /barrier/{name}", s.barrier)
	s.mux.HandleFunc("POST /signal/{name}", s.signal)
	s.mux.HandleFunc("GET /signal/{name}", s.waitSignal)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve answers on ln until ctx ends, then shuts down (waiters get their
// connections closed).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			srv.Close()
		case <-done:
		}
	}()
	err := srv.Serve(ln)
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// broadcastLocked wakes every waiter; s.mu must be held.
func (s *Server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitUntil calls cond under the lock until it returns true, the wait
// runs out, or the client goes away. It returns whether cond held.
func (s *Server) waitUntil(r *http.Request, wait time.Duration, cond func() bool) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if cond() {
			return true // still locked: the caller reads state and unlocks
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			s.mu.Lock()
			if cond() {
				return true
			}
			return false
		case <-r.Context().Done():
			s.mu.Lock()
			return false
		}
	}
}

func waitParam(r *http.Request, def time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if secs, err2 := strconv.Atoi(v); err2 == nil {
			d, err = time.Duration(secs)*time.Second, nil
		}
	}
	if err != nil || d < 0 {
		return 0, fmt.Errorf("wait=%q: want a duration such as 30s", v)
	}
	return min(d, MaxWait), nil
}

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if def < 0 {
			return 0, fmt.Errorf("%s= is required", name)
		}
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want a positive number", name, v)
	}
	return n, nil
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		http.Error(w, "empty key", http.StatusBadRequest)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxValue+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(data) > MaxValue {
		http.Error(w, fmt.Sprintf("value larger than %d bytes", MaxValue), http.StatusRequestEntityTooLarge)
		return
	}
	s.mu.Lock()
	s.version++
	s.kv[key] = value{data: data, version: s.version}
	v := s.version
	s.broadcastLocked()
	s.mu.Unlock()
	w.Header().Set("X-Version", strconv.FormatUint(v, 10))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	wait, err := waitParam(r, 0)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var after uint64
	if a := r.URL.Query().Get("after"); a != "" {
		if after, err = strconv.ParseUint(a, 10, 64); err != nil {
			http.Error(w, fmt.Sprintf("after=%q: want a version number", a), http.StatusBadRequest)
			return
		}
	}
	var v value
	ok := s.waitUntil(r, wait, func() bool {
		var found bool
		v, found = s.kv[key]
		return found && v.version > after
	})
	s.mu.Unlock()
	if !ok {
		if wait == 0 {
			http.Error(w, fmt.Sprintf("key %q is not set", key), http.StatusNotFound)
		} else {
			http.Error(w, fmt.Sprintf("key %q: no value after %s", key, wait), http.StatusRequestTimeout)
		}
		return
	}
	w.Header().Set("X-Version", strconv.FormatUint(v.version, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(v.data)
}

func (s *Server) del(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	delete(s.kv, r.PathValue("key"))
	s.broadcastLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// barrier: POST /barrier/NAME?n=N[&wait=D]. Released together when the
// n-th caller arrives; a caller that gives up is no longer counted. After a
// release the barrier can be used again (next round).
func (s *Server) barrier(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	n, err := intParam(r, "n", -1)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	wait, err := waitParam(r, DefaultBarrier)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	b := s.barriers[name]
	if b == nil {
		b = &barrier{n: n}
		s.barriers[name] = b
	}
	if b.n != n {
		if b.arrived > 0 {
			s.mu.Unlock()
			http.Error(w, fmt.Sprintf("barrier %q is waiting for %d, not %d", name, b.n, n), http.StatusConflict)
			return
		}
		b.n = n
	}
	gen := b.generation
	b.arrived++
	if b.arrived >= b.n {
		b.arrived = 0
		b.generation++
		s.broadcastLocked()
	}
	s.mu.Unlock()
	ok := s.waitUntil(r, wait, func() bool { return b.generation != gen })
	arrived := b.arrived
	if !ok {
		b.arrived-- // this caller leaves
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("barrier %q: %d of %d arrived within %s", name, arrived, n, wait), http.StatusRequestTimeout)
		return
	}
	fmt.Fprintf(w, "%d/%d\n", n, n)
}

// signal: POST /signal/NAME adds one and prints the count.
func (s *Server) signal(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	s.signals[name]++
	count := s.signals[name]
	s.broadcastLocked()
	s.mu.Unlock()
	fmt.Fprintf(w, "%d\n", count)
}

// waitSignal: GET /signal/NAME?n=N[&wait=D] returns when the count is >= n.
func (s *Server) waitSignal(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	n, err := intParam(r, "n", 1)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	wait, err := waitParam(r, DefaultBarrier)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ok := s.waitUntil(r, wait, func() bool { return s.signals[name] >= n })
	count := s.signals[name]
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("signal %q: %d of %d within %s", name, count, n, wait), http.StatusRequestTimeout)
		return
	}
	fmt.Fprintf(w, "%d\n", count)
}

// Package coord is the lab's coordination service: a small HTTP server on
// the management network that workloads on every host use out of band, to
// share values, meet at barriers and wait for each other. It keeps
// everything in memory for the life of the lab.
//
// From a shell in a guest (forgelab sets FORGELAB_COORD in the environment
// of services and workloads):
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
//
// Every request but /healthz needs the lab's token. FORGELAB_COORD carries
// it as the URL's password (http://forgelab:TOKEN@ADDR:PORT), which curl
// and Go's net/http send as Basic authentication by themselves, so the
// lines above need nothing more; `Authorization: Bearer TOKEN` works too.
// Without it a request gets 401. forgelab starts the service listening
// only on the addresses the lab's hosts reach it at (the management
// network's gateway; this machine's address towards each physical host),
// never on every interface.
//
// Limits keep one lab from exhausting this machine's memory: too many
// keys, barriers and signals, too many bytes of values, or too many
// requests waiting at once get 503; too long a name 414; too large a
// value 413. Each answer says which limit it hit.
package coord

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of the service.
const (
	MaxValue       = 1 << 20          // bytes per value
	MaxWait        = 30 * time.Minute // longest wait a request may ask for
	DefaultBarrier = 5 * time.Minute  // barrier and signal wait when none is given
)

// Limits bound what one lab can make the service hold.
type Limits struct {
	Keys    int // keys set at once
	NameLen int // bytes per key, barrier or signal name
	Bytes   int // bytes of all values together
	Names   int // barriers and signals together
	Waiters int // requests waiting at once (kv waits, barriers, signal waits)
}

// DefaultLimits are far above what a lab's workloads use and far below
// what hurts this machine (at most 64 MiB of values).
var DefaultLimits = Limits{Keys: 10000, NameLen: 512, Bytes: 64 << 20, Names: 1000, Waiters: 1000}

// NewToken makes a lab's token: 128 random bits, hex.
func NewToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("coordination token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// URL is what hosts get in FORGELAB_COORD: the service at addr (HOST:PORT)
// with the token as the URL's password, which net/http prints as *** in
// its errors.
func URL(addr, token string) string {
	return "http://forgelab:" + token + "@" + addr
}

// Server is the coordination service. The zero value is not usable; use New.
type Server struct {
	token    string
	limits   Limits
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change: wakes all waiters
	kv       map[string]value
	bytes    int // of all values
	version  uint64
	barriers map[string]*barrier
	signals  map[string]int
	waiters  int // requests waiting now
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

// New returns an empty service that answers requests carrying token (an
// empty token: none), within l (zero fields take DefaultLimits').
func New(token string, l Limits) *Server {
	d := DefaultLimits
	for _, f := range []struct{ v, def *int }{{&l.Keys, &d.Keys}, {&l.NameLen, &d.NameLen}, {&l.Bytes, &d.Bytes}, {&l.Names, &d.Names}, {&l.Waiters, &d.Waiters}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	s := &Server{
		token:    token,
		limits:   l,
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

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz" && !s.authorized(r) {
		http.Error(w, "missing or wrong token: use the URL in $FORGELAB_COORD as it is (it carries the lab's token)", http.StatusUnauthorized)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized: the token as the Basic password (or user, when there is no
// password), or as a Bearer token.
func (s *Server) authorized(r *http.Request) bool {
	if s.token == "" {
		return false
	}
	var got string
	if u, p, ok := r.BasicAuth(); ok {
		got = p
		if p == "" {
			got = u
		}
	} else if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		got = strings.TrimSpace(b)
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

// Serve answers on ln until ctx ends, then shuts down (waiters get their
// connections closed).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
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

// errBusy is a request refused because Limits.Waiters requests wait.
var errBusy = errors.New("busy")

// waitUntil calls cond under the lock until it returns true, the wait
// runs out, or the client goes away. It returns whether cond held, with
// the lock held for the caller to read state and unlock; or errBusy,
// without the lock, when the request would have to wait and as many
// requests as the limit allows wait already.
func (s *Server) waitUntil(r *http.Request, wait time.Duration, cond func() bool) (bool, error) {
	s.mu.Lock()
	if cond() || wait <= 0 {
		return cond(), nil
	}
	if s.waiters >= s.limits.Waiters {
		s.mu.Unlock()
		return false, errBusy
	}
	s.waiters++
	defer func() { s.waiters-- }() // runs with the lock held again
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			s.mu.Lock()
			return cond(), nil
		case <-r.Context().Done():
			s.mu.Lock()
			return false, nil
		}
		s.mu.Lock()
		if cond() {
			return true, nil
		}
	}
}

func (s *Server) busy(w http.ResponseWriter) {
	http.Error(w, fmt.Sprintf("%d requests wait already, the most the service allows: wait fewer at once", s.limits.Waiters), http.StatusServiceUnavailable)
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

// name checks a key, barrier or signal name.
func (s *Server) name(w http.ResponseWriter, what, n string) bool {
	if n == "" {
		http.Error(w, "empty "+what, http.StatusBadRequest)
		return false
	}
	if len(n) > s.limits.NameLen {
		http.Error(w, fmt.Sprintf("%s of %d bytes: at most %d", what, len(n), s.limits.NameLen), http.StatusRequestURITooLong)
		return false
	}
	return true
}

// newNameLocked reports whether one more barrier or signal fits, and
// answers when not.
func (s *Server) newNameLocked(w http.ResponseWriter, what, n string) bool {
	if len(s.barriers)+len(s.signals) < s.limits.Names {
		return true
	}
	http.Error(w, fmt.Sprintf("%s %q: the lab has %d barriers and signals, the most the service keeps: reuse names", what, n, s.limits.Names), http.StatusServiceUnavailable)
	return false
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !s.name(w, "key", key) {
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
	old, had := s.kv[key]
	if !had && len(s.kv) >= s.limits.Keys {
		s.mu.Unlock()
		http.Error(w, fmt.Sprintf("key %q: %d keys are set, the most the service keeps: delete some, or reuse keys", key, s.limits.Keys), http.StatusServiceUnavailable)
		return
	}
	if total := s.bytes - len(old.data) + len(data); total > s.limits.Bytes {
		s.mu.Unlock()
		http.Error(w, fmt.Sprintf("key %q: values would take %d bytes, more than the %d the service keeps: delete some", key, total, s.limits.Bytes), http.StatusServiceUnavailable)
		return
	}
	s.bytes += len(data) - len(old.data)
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
	ok, err := s.waitUntil(r, wait, func() bool {
		var found bool
		v, found = s.kv[key]
		return found && v.version > after
	})
	if err != nil {
		s.busy(w)
		return
	}
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
	key := r.PathValue("key")
	s.mu.Lock()
	s.bytes -= len(s.kv[key].data)
	delete(s.kv, key)
	s.broadcastLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// barrier: POST /barrier/NAME?n=N[&wait=D]. Released together when the
// n-th caller arrives; a caller that gives up is no longer counted. After a
// release the barrier can be used again (next round).
func (s *Server) barrier(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.name(w, "barrier", name) {
		return
	}
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
		if !s.newNameLocked(w, "barrier", name) {
			s.mu.Unlock()
			return
		}
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
	// Refused before it counts, when it would wait and may not.
	if b.arrived+1 < b.n && s.waiters >= s.limits.Waiters {
		s.mu.Unlock()
		s.busy(w)
		return
	}
	gen := b.generation
	b.arrived++
	if b.arrived >= b.n {
		b.arrived = 0
		b.generation++
		s.broadcastLocked()
	}
	s.mu.Unlock()
	ok, err := s.waitUntil(r, wait, func() bool { return b.generation != gen })
	if err != nil { // others began to wait meanwhile
		s.mu.Lock()
		if b.generation == gen {
			b.arrived--
		}
		s.mu.Unlock()
		s.busy(w)
		return
	}
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
	if !s.name(w, "signal", name) {
		return
	}
	s.mu.Lock()
	if _, ok := s.signals[name]; !ok && !s.newNameLocked(w, "signal", name) {
		s.mu.Unlock()
		return
	}
	s.signals[name]++
	count := s.signals[name]
	s.broadcastLocked()
	s.mu.Unlock()
	fmt.Fprintf(w, "%d\n", count)
}

// waitSignal: GET /signal/NAME?n=N[&wait=D] returns when the count is >= n.
// Waiting makes no name: only signals count against Limits.Names.
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
	ok, err := s.waitUntil(r, wait, func() bool { return s.signals[name] >= n })
	if err != nil {
		s.busy(w)
		return
	}
	count := s.signals[name]
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("signal %q: %d of %d within %s", name, count, n, wait), http.StatusRequestTimeout)
		return
	}
	fmt.Fprintf(w, "%d\n", count)
}

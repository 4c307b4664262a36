// Package serve is `forgelab serve`: one HTTP server per machine with the
// web UI at /, Prometheus metrics at /metrics, a JSON API under /api/v1/
// and a live stream of each lab (Server-Sent Events). It holds no state of
// its own: every answer is read from the backend when asked, so labs may
// come and go and engines restart under it.
//
// Security: it listens on loopback unless told otherwise, and then only
// with a bearer token; with a token set, every call that changes a lab
// needs it. Calls that change a lab must be JSON POSTs from this origin,
// so a web page elsewhere cannot drive them through the user's browser.
package serve

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/forgelab/forgelab/telemetry/backend"
	"github.com/forgelab/forgelab/telemetry/metrics"
	"github.com/forgelab/forgelab/telemetry/ui"
)

// DefaultListen is where serve listens unless told otherwise: this machine only.
const DefaultListen = "127.0.0.1:7177"

// Config is how a Server runs.
type Config struct {
	// Listen is host:port; a host other than loopback needs Token.
	Listen string
	// Token, when set, is required (Authorization: Bearer) by every call
	// that changes a lab.
	Token string
	// Interval is the default period of the live stream (250 ms if zero).
	Interval time.Duration
	Log      *slog.Logger
}

// Server is the HTTP handler of forgelab serve.
type Server struct {
	b        backend.Backend
	loopback bool     // listening on this machine only: requests must name it
	token    [32]byte // sha256 of the token, so the comparison's time says nothing about its length
	hasToken bool
	interval time.Duration
	log      *slog.Logger
	mux      *http.ServeMux
	feeds    *feeds
}

// New checks cfg and builds the server over b.
func New(b backend.Backend, cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if err := CheckListen(cfg.Listen, cfg.Token != ""); err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	s := &Server{b: b, interval: cfg.Interval, log: cfg.Log, loopback: isLoopback(host)}
	if s.interval <= 0 {
		s.interval = 250 * time.Millisecond
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.feeds = &feeds{s: s, m: map[feedKey]*feed{}}
	if cfg.Token != "" {
		s.token, s.hasToken = sha256.Sum256([]byte(cfg.Token)), true
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(b, 8*time.Second, s.log))

	m := http.NewServeMux()
	m.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	m.HandleFunc("GET /api/v1/labs", s.labs)
	m.HandleFunc("GET /api/v1/labs/{lab}", s.topology)
	m.HandleFunc("GET /api/v1/labs/{lab}/links", s.links)
	m.HandleFunc("GET /api/v1/labs/{lab}/snapshot", s.snapshotOnce)
	m.HandleFunc("GET /api/v1/labs/{lab}/events", s.events)
	m.HandleFunc("GET /api/v1/labs/{lab}/stream", s.stream)
	m.HandleFunc("GET /api/v1/runs", s.runs)
	m.HandleFunc("GET /api/v1/runs/{lab}/{run}", s.run)
	m.Handle("POST /api/v1/labs/{lab}/links/{link}/quality", s.control(s.setLink().handler(s)))
	m.Handle("POST /api/v1/labs/{lab}/links/{link}/state", s.control(s.setLinkUp().handler(s)))
	m.Handle("POST /api/v1/labs/{lab}/partition", s.control(s.partition().handler(s)))
	m.Handle("POST /api/v1/labs/{lab}/heal", s.control(s.heal().handler(s)))
	m.Handle("POST /api/v1/labs/{lab}/hosts/{host}/action", s.control(s.hostAction().handler(s)))
	m.Handle("POST /api/v1/labs/{lab}/scenario/start", s.control(s.scenarioStart().handler(s)))
	m.Handle("POST /api/v1/labs/{lab}/scenario/stop", s.control(s.scenarioStop().handler(s)))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no API call %s %s (the calls are listed in docs/serve.md)", r.Method, r.URL.Path))
	})
	// The embedded files: fs.FS paths cannot climb out of the embedded
	// tree, so no request reaches any other file.
	m.Handle("/", static(http.FileServerFS(ui.FS())))
	s.mux = m
	return s, nil
}

// ServeHTTP serves every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	// On loopback the only protection is that nothing else can connect; a
	// web page whose name an attacker points at 127.0.0.1 (DNS rebinding)
	// could, and its requests would carry its own name. So the request must
	// name this machine.
	if s.loopback {
		host := r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		if !isLoopback(strings.Trim(host, "[]")) {
			writeError(w, http.StatusMisdirectedRequest, fmt.Errorf("serve listens on this machine only; open it as http://127.0.0.1:PORT/ or http://localhost:PORT/, not as %q", r.Host))
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// CheckListen refuses an address beyond this machine without a token: the
// server can change labs.
func CheckListen(addr string, hasToken bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w (want host:port, e.g. %s)", addr, err, DefaultListen)
	}
	if isLoopback(host) || hasToken {
		return nil
	}
	return fmt.Errorf("--listen %s reaches beyond this machine and serve can change labs: add --token-file FILE (a secret that every change must present as a bearer token), or listen on 127.0.0.1", addr)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listen opens addr, saying which port is taken when it is.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		_, port, _ := net.SplitHostPort(addr)
		return nil, fmt.Errorf("port %s is taken on %s (another forgelab serve? `ss -ltnp 'sport = :%s'` names the process): stop it or choose another port with --listen", port, addr, port)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx ends, then shuts down, giving open
// requests (and streams) a moment to end.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: the live stream is one long response.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := hs.Shutdown(shut); err != nil {
		hs.Close()
	}
	<-done
	return nil
}

// URL is the address a browser opens for ln.
func URL(ln net.Listener) string {
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, fmt.Sprint(addr.Port)), Path: "/"}).String()
}

// control wraps a call that changes a lab: token, same origin, JSON, a
// bounded body, and the caller's source.
func (s *Server) control(h func(w http.ResponseWriter, r *http.Request, source string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hasToken {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(got))
			if !ok || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="forgelab"`)
				writeError(w, http.StatusUnauthorized, errors.New("this call changes a lab and needs the token: send Authorization: Bearer <the token in serve's --token-file> (in the web UI: open it with #token=<token> after the address)"))
				return
			}
		}
		// A cross-site form or fetch cannot send application/json without a
		// preflight this server never answers, and a browser names the
		// page's origin: together they keep other pages' scripts out.
		if o := r.Header.Get("Origin"); o != "" {
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				writeError(w, http.StatusForbidden, fmt.Errorf("changes are accepted only from serve's own page, not from origin %q", o))
				return
			}
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			writeError(w, http.StatusUnsupportedMediaType, fmt.Errorf("send the body as JSON with Content-Type: application/json (got %q)", ct))
			return
		}
		source := backend.SourceAPI
		switch v := r.Header.Get("X-Forgelab-Source"); v {
		case "", backend.SourceAPI:
		case backend.SourceUI:
			source = backend.SourceUI
		default:
			writeError(w, http.StatusBadRequest, fmt.Errorf("X-Forgelab-Source %q: a web client is %q or %q", v, backend.SourceAPI, backend.SourceUI))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		h(w, r, source)
	})
}

func static(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != "/" {
			writeError(w, http.StatusNotFound, fmt.Errorf("%s: no such page", r.URL.Path)) // no directory listings
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: the page's files are read with GET", r.Method, r.URL.Path))
			return
		}
		// Vendored libraries never change within a binary; the page's own
		// files change with it, so the browser asks again each time.
		if !strings.HasPrefix(r.URL.Path, "/vendor/") {
			w.Header().Set("Cache-Control", "no-cache")
		}
		h.ServeHTTP(w, r)
	})
}

// ReadTokenFile reads a bearer token: the file's first line, at least 16
// characters, in a file only its owner can read.
func ReadTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("--token-file %s can be read by other users (mode %v): chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok, _, _ := strings.Cut(string(data), "\n")
	tok = strings.TrimSpace(tok)
	if len(tok) < 16 {
		return "", fmt.Errorf("--token-file %s: the token is %d characters, want at least 16 (e.g. head -c 24 /dev/urandom | base64 > %s)", path, len(tok), path)
	}
	return tok, nil
}

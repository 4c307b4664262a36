package serve_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
	"github.com/forgelab/forgelab/telemetry/backend/backendtest"
	"github.com/forgelab/forgelab/telemetry/serve"
)

func newServer(t *testing.T, token string) (*backendtest.Fake, *httptest.Server) {
	t.Helper()
	f := backendtest.New()
	s, err := serve.New(f, serve.Config{Listen: "127.0.0.1:0", Token: token, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return f, srv
}

type call struct {
	method, path, body string
	header             map[string]string
}

func do(t *testing.T, srv *httptest.Server, c call) (int, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.method == "POST" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestReads(t *testing.T) {
	_, srv := newServer(t, "")
	cases := []struct {
		path string
		code int
		has  string
	}{
		{"/api/v1/labs", 200, `"name":"demo"`},
		{"/api/v1/labs/demo", 200, `"position":[100,0,0]`},
		{"/api/v1/labs/demo/links", 200, `"name":"seg"`},
		{"/api/v1/labs/demo/snapshot", 200, `"domains":[`},
		{"/api/v1/labs/demo/events?after=0&limit=10", 200, `"events":[]`},
		{"/api/v1/runs", 200, `"id":"20260101-000000"`},
		{"/api/v1/runs/demo/20260101-000000", 200, `"forgelab_host_position_meters"`},
		{"/metrics", 200, `forgelab_link_up{lab="demo",link="ab"} 1`},
		{"/", 200, "<title>forgelab"},
		{"/vendor/cytoscape.min.js", 200, "cytoscape"},
		// Mistakes: 4xx with a message that says what to do.
		{"/api/v1/labs/nope", 404, `lab \"nope\"`},
		{"/api/v1/labs/nope/stream", 404, `"error"`},
		{"/api/v1/labs/demo/events?after=x", 400, "cursor"},
		{"/api/v1/labs/demo/events?limit=0", 400, "limit"},
		{"/api/v1/labs/demo/stream?interval_ms=1", 400, "interval_ms"},
		{"/api/v1/runs/demo/nope", 404, "run demo/nope"},
		{"/api/v1/nothing", 404, "no API call"},
		{"/vendor/", 404, "no such page"},
		{"/../../../etc/passwd", 404, ""},
		{"/%2e%2e/%2e%2e/etc/passwd", 404, ""},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			code, body := do(t, srv, call{method: "GET", path: c.path})
			if code != c.code || !strings.Contains(body, c.has) {
				t.Errorf("GET %s = %d %.300s; want %d with %q", c.path, code, body, c.code, c.has)
			}
			if strings.Contains(body, "root:x:0:0") {
				t.Errorf("GET %s escaped the embedded files", c.path)
			}
		})
	}
}

func TestControl(t *testing.T) {
	cases := []struct {
		name string
		call call
		code int
		has  string
		// action the fake must have recorded, with source
		action, source string
	}{
		{"set quality from the ui", call{method: "POST", path: "/api/v1/labs/demo/links/ab/quality", body: `{"from":"a","loss":20,"delay_ns":30000000}`,
			header: map[string]string{"X-Forgelab-Source": "ui"}}, 200, `"loss":20`, "link.set", "ui"},
		{"set quality every direction", call{method: "POST", path: "/api/v1/labs/demo/links/seg/quality", body: `{"rate_bits":10000000}`}, 200, `"rate_bits":10000000`, "link.set", "api"},
		{"cut link", call{method: "POST", path: "/api/v1/labs/demo/links/ab/state", body: `{"up":false}`}, 200, `"up":false`, "link.down", "api"},
		{"partition", call{method: "POST", path: "/api/v1/labs/demo/partition", body: `{"groups":[["a"],["b","c"]]}`}, 200, `"groups":[["a"],["b","c"]]`, "partition", "api"},
		{"heal", call{method: "POST", path: "/api/v1/labs/demo/heal", body: ``}, 200, `"shaper"`, "heal", "api"},
		{"pause host", call{method: "POST", path: "/api/v1/labs/demo/hosts/b/action", body: `{"action":"pause"}`}, 200, `"action":"pause"`, "host.pause", "api"},
		{"stop scenario", call{method: "POST", path: "/api/v1/labs/demo/scenario/stop", body: `{}`}, 200, `"running":false`, "scenario.stop", "api"},

		// Bad input: 4xx, a clear message, nothing changed.
		{"unknown lab", call{method: "POST", path: "/api/v1/labs/nope/links/ab/quality", body: `{"loss":1}`}, 404, `lab \"nope\"`, "", ""},
		{"unknown link", call{method: "POST", path: "/api/v1/labs/demo/links/zz/quality", body: `{"loss":1}`}, 404, `no link \"zz\" (links: ab, bc, cd, seg)`, "", ""},
		{"unknown endpoint", call{method: "POST", path: "/api/v1/labs/demo/links/ab/quality", body: `{"from":"c","loss":1}`}, 404, `no endpoint \"c\"`, "", ""},
		{"loss over 100%", call{method: "POST", path: "/api/v1/labs/demo/links/ab/quality", body: `{"loss":150}`}, 400, "outside 0%..100%", "", ""},
		{"negative delay", call{method: "POST", path: "/api/v1/labs/demo/links/ab/quality", body: `{"delay_ns":-5}`}, 400, "negative", "", ""},
		{"reorder without delay", call{method: "POST", path: "/api/v1/labs/demo/links/ab/quality", body: `{"reorder":5}`}, 400, "reorder", "", ""},
		{"unknown field", call{method: "POST", path: "/api/v1/labs/demo/links/ab/quality", body: `{"lost":1}`}, 400, `unknown field \"lost\"`, "", ""},
		{"not JSON", call{method: "POST", path: "/api/v1/labs/demo/links/ab/quality", body: `loss=1`}, 400, "not the JSON", "", ""},
		{"trailing data", call{method: "POST", path: "/api/v1/labs/demo/heal", body: `{} {}`}, 400, "after its JSON", "", ""},
		{"form content type", call{method: "POST", path: "/api/v1/labs/demo/heal", body: `{}`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "application/json", "", ""},
		{"foreign origin", call{method: "POST", path: "/api/v1/labs/demo/heal", body: `{}`, header: map[string]string{"Origin": "http://evil.example"}}, 403, "origin", "", ""},
		{"claims to be the cli", call{method: "POST", path: "/api/v1/labs/demo/heal", body: `{}`, header: map[string]string{"X-Forgelab-Source": "cli"}}, 400, "X-Forgelab-Source", "", ""},
		{"link state without up", call{method: "POST", path: "/api/v1/labs/demo/links/ab/state", body: `{}`}, 400, `{\"up\": false}`, "", ""},
		{"one group", call{method: "POST", path: "/api/v1/labs/demo/partition", body: `{"groups":[["a","b"]]}`}, 400, "at least two groups", "", ""},
		{"host in two groups", call{method: "POST", path: "/api/v1/labs/demo/partition", body: `{"groups":[["a","b"],["b"]]}`}, 400, "two groups", "", ""},
		{"unknown host in partition", call{method: "POST", path: "/api/v1/labs/demo/partition", body: `{"groups":[["a"],["x"]]}`}, 404, `no host \"x\"`, "", ""},
		{"unknown host action", call{method: "POST", path: "/api/v1/labs/demo/hosts/a/action", body: `{"action":"explode"}`}, 400, "want one of stop, start", "", ""},
		{"action on physical host", call{method: "POST", path: "/api/v1/labs/demo/hosts/d/action", body: `{"action":"kill"}`}, 400, "not a VM", "", ""},
		{"unknown host", call{method: "POST", path: "/api/v1/labs/demo/hosts/q/action", body: `{"action":"kill"}`}, 404, `no host \"q\"`, "", ""},
		{"scenario as a path", call{method: "POST", path: "/api/v1/labs/demo/scenario/start", body: `{"scenario":"../../etc/x"}`}, 400, "not a path", "", ""},
		{"scenario already running", call{method: "POST", path: "/api/v1/labs/demo/scenario/start", body: `{}`}, 409, "already running", "", ""},
		{"GET on a control call", call{method: "GET", path: "/api/v1/labs/demo/heal"}, 404, "no API call GET", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, srv := newServer(t, "")
			code, body := do(t, srv, c.call)
			if code != c.code || !strings.Contains(body, c.has) {
				t.Fatalf("%s %s = %d %.300s; want %d with %q", c.call.method, c.call.path, code, body, c.code, c.has)
			}
			calls := f.Calls()
			if c.action == "" {
				if len(calls) != 0 {
					t.Errorf("a refused call changed the lab: %+v", calls)
				}
				if !strings.HasPrefix(body, `{"error":`) {
					t.Errorf("error body is not {\"error\": ...}: %s", body)
				}
				return
			}
			if len(calls) != 1 || calls[0].Action != c.action || calls[0].Source != c.source {
				t.Errorf("backend got %+v, want one %s from %s", calls, c.action, c.source)
			}
		})
	}
}

// TestHostHeader: on loopback, a request that names another host (a page
// whose DNS name was pointed at 127.0.0.1) is refused, reads included.
func TestHostHeader(t *testing.T) {
	f, srv := newServer(t, "")
	cases := []struct {
		host string
		code int
	}{
		{"", 200}, // the test client names 127.0.0.1:port
		{"localhost:7177", 200},
		{"[::1]:7177", 200},
		{"evil.example:7177", 421},
		{"evil.example", 421},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/labs/demo/heal", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		if c.host != "" {
			req.Host = c.host
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("Host %q: %d, want %d", c.host, resp.StatusCode, c.code)
		}
	}
	if n := len(f.Calls()); n != 3 {
		t.Errorf("%d calls reached the backend, want 3", n)
	}
}

func TestBackendFailureIs500(t *testing.T) {
	f, srv := newServer(t, "")
	f.FailOn("heal")
	code, body := do(t, srv, call{method: "POST", path: "/api/v1/labs/demo/heal", body: `{}`})
	if code != 500 || !strings.Contains(body, "fails as asked") {
		t.Errorf("= %d %s, want 500 with the backend's message", code, body)
	}
}

func TestToken(t *testing.T) {
	const token = "s3cret-token-of-the-test"
	cases := []struct {
		name, auth string
		code       int
	}{
		{"none", "", 401},
		{"wrong", "Bearer nope", 401},
		{"longer", "Bearer " + token + "x", 401},
		{"not bearer", "Basic " + token, 401},
		{"right", "Bearer " + token, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, srv := newServer(t, token)
			h := map[string]string{}
			if c.auth != "" {
				h["Authorization"] = c.auth
			}
			code, body := do(t, srv, call{method: "POST", path: "/api/v1/labs/demo/heal", body: `{}`, header: h})
			if code != c.code {
				t.Fatalf("= %d %s, want %d", code, body, c.code)
			}
			if code == 401 && (len(f.Calls()) != 0 || !strings.Contains(body, "token")) {
				t.Errorf("refused call: calls %v, body %s", f.Calls(), body)
			}
			// Reads need no token.
			if code, _ := do(t, srv, call{method: "GET", path: "/api/v1/labs"}); code != 200 {
				t.Errorf("GET labs = %d with a token configured", code)
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	cases := []struct {
		addr  string
		token bool
		err   string
	}{
		{"127.0.0.1:7177", false, ""},
		{"[::1]:7177", false, ""},
		{"localhost:7177", false, ""},
		{"0.0.0.0:7177", false, "--token-file"},
		{":7177", false, "--token-file"},
		{"192.0.2.1:7177", false, "--token-file"},
		{"0.0.0.0:7177", true, ""},
		{"7177", false, "host:port"},
	}
	for _, c := range cases {
		err := serve.CheckListen(c.addr, c.token)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("CheckListen(%q, %v) = %v, want %q", c.addr, c.token, err, c.err)
		}
	}
	if _, err := serve.New(backendtest.New(), serve.Config{Listen: "0.0.0.0:7177"}); err == nil {
		t.Error("New listens beyond loopback without a token")
	}
}

func TestPortTaken(t *testing.T) {
	ctx := context.Background()
	ln, err := serve.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	_, err = serve.Listen(ctx, addr)
	if err == nil || !strings.Contains(err.Error(), "port "+port+" is taken") || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("second Listen on %s: %v, want a message naming the port and --listen", addr, err)
	}
}

func TestServeStops(t *testing.T) {
	s, err := serve.New(backendtest.New(), serve.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := serve.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get(serve.URL(ln) + "api/v1/labs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

// sse reads Server-Sent Events.
type sse struct {
	r *bufio.Reader
}

func (s *sse) next(t *testing.T) (string, string) {
	t.Helper()
	var event, data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		case line == "" && event != "":
			return event, data
		}
	}
}

func TestStream(t *testing.T) {
	f, srv := newServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/labs/demo/stream?interval_ms=50", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	s := &sse{bufio.NewReader(resp.Body)}
	if ev, data := s.next(t); ev != "topology" || !strings.Contains(data, `"lab":"demo"`) {
		t.Fatalf("first event %s %s, want the topology", ev, data)
	}
	if ev, _ := s.next(t); ev != "snapshot" {
		t.Fatalf("second event %s, want a snapshot", ev)
	}
	// A change made elsewhere shows in a later snapshot, with its event.
	start := time.Now()
	if err := f.SetQuality("demo", "bc", "c", netfabric.Impairment{Loss: 42}); err != nil {
		t.Fatal(err)
	}
	for {
		ev, data := s.next(t)
		if ev != "snapshot" {
			t.Fatalf("event %s %s", ev, data)
		}
		var snap serve.Snapshot
		if err := json.Unmarshal([]byte(data), &snap); err != nil {
			t.Fatal(err)
		}
		if lossOf(snap.Links, "bc", "c") == 42 {
			if len(snap.Events) != 1 || snap.Events[0].Source != "cli" {
				t.Errorf("events with the change: %+v", snap.Events)
			}
			break
		}
		if time.Since(start) > time.Second {
			t.Fatal("the change did not reach the stream within a second")
		}
	}
	// The lab made anew with another shape: the topology again.
	topo := backendtest.DemoTopology("demo")
	topo.Links = topo.Links[:1]
	f.AddLab(topo)
	for ev, data := s.next(t); ev != "topology"; ev, data = s.next(t) {
		if ev != "snapshot" {
			t.Fatalf("event %s %s", ev, data)
		}
	}
	// The lab destroyed: "gone", and the stream ends.
	f.RemoveLab("demo")
	for ev, _ := s.next(t); ev != "gone"; ev, _ = s.next(t) {
	}
	if _, err := s.r.ReadString('\n'); err != io.EOF {
		t.Errorf("stream goes on after gone: %v", err)
	}
}

func lossOf(st netfabric.State, link, from string) float64 {
	for _, l := range st.Links {
		for _, d := range l.Directions {
			if l.Name == link && d.From == from {
				return d.Quality.Loss
			}
		}
	}
	return -1
}

// Compile-time check: the fake is a whole backend with runs.
var (
	_ backend.Backend = (*backendtest.Fake)(nil)
	_ backend.Runs    = (*backendtest.Fake)(nil)
)

// TestStreamsShareOneFeed: two pages on one lab cost the backend one read
// per tick, not two; and a page that joins later gets the event backlog.
func TestStreamsShareOneFeed(t *testing.T) {
	f, srv := newServer(t, "")
	if err := f.Heal(context.Background(), "cli", "demo"); err != nil { // one event in the log
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func() *sse {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/labs/demo/stream?interval_ms=50", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return &sse{bufio.NewReader(resp.Body)}
	}
	a, b := open(), open()
	for _, s := range []*sse{a, b} {
		if ev, _ := s.next(t); ev != "topology" {
			t.Fatalf("first event %s", ev)
		}
		if ev, data := s.next(t); ev != "events" || !strings.Contains(data, `"action":"heal"`) {
			t.Fatalf("second event %s %s, want the backlog", ev, data)
		}
	}
	reads0 := f.Reads("links")
	const n = 10
	for range n {
		for _, s := range []*sse{a, b} {
			if ev, data := s.next(t); ev != "snapshot" {
				t.Fatalf("event %s %s", ev, data)
			}
		}
	}
	if reads := f.Reads("links") - reads0; reads > n+3 {
		t.Errorf("%d link reads for %d snapshots to each of two pages: the pages do not share a feed", reads, n)
	}
}

package coord

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "0123456789abcdef0123456789abcdef"

// testServer is a service and its URL with the token, as hosts get it.
type testServer struct{ URL string }

func newTestLimits(t *testing.T, l Limits) (testServer, *Client) {
	t.Helper()
	srv := httptest.NewServer(New(testToken, l))
	t.Cleanup(srv.Close)
	u := URL(strings.TrimPrefix(srv.URL, "http://"), testToken)
	return testServer{u}, &Client{Base: u}
}

func newTest(t *testing.T) (testServer, *Client) { return newTestLimits(t, Limits{}) }

func TestKV(t *testing.T) {
	srv, c := newTest(t)
	ctx := context.Background()
	if _, err := c.Get(ctx, "a/b", 0); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unset key: got %v, want 404", err)
	}
	if err := c.Put(ctx, "a/b", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "a/b", 0)
	if err != nil || string(got) != "v1" {
		t.Fatalf("get = %q, %v", got, err)
	}
	// after= waits for a newer version.
	resp, err := http.Get(srv.URL + "/kv/a/b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ver := resp.Header.Get("X-Version")
	done := make(chan string)
	go func() {
		resp, err := http.Get(srv.URL + "/kv/a/b?wait=5s&after=" + ver)
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- string(b)
	}()
	time.Sleep(50 * time.Millisecond)
	if err := c.Put(ctx, "a/b", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v := <-done; v != "v2" {
		t.Fatalf("watch got %q, want v2", v)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/kv/a/b", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", resp, err)
	}
	if _, err := c.Get(ctx, "a/b", 0); err == nil {
		t.Fatal("deleted key still there")
	}
}

func TestGetWaitsForKey(t *testing.T) {
	_, c := newTest(t)
	ctx := context.Background()
	got := make(chan string, 1)
	go func() {
		v, err := c.Get(ctx, "late", 5*time.Second)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(v)
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case v := <-got:
		t.Fatalf("returned before the key was set: %q", v)
	default:
	}
	c.Put(ctx, "late", []byte("here"))
	if v := <-got; v != "here" {
		t.Fatalf("got %q", v)
	}
	_, err := c.Get(ctx, "never", 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "408") {
		t.Fatalf("wait that runs out: got %v, want 408", err)
	}
}

func TestBarrier(t *testing.T) {
	_, c := newTest(t)
	ctx := context.Background()
	const n = 3
	for round := 0; round < 2; round++ { // reusable after a release
		var wg sync.WaitGroup
		errs := make(chan error, n)
		released := make(chan struct{}, n)
		for i := 0; i < n; i++ {
			if i == n-1 {
				time.Sleep(100 * time.Millisecond)
				if len(released) != 0 {
					t.Fatalf("round %d: released before the last arrival", round)
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.Barrier(ctx, "start", n, 5*time.Second); err != nil {
					errs <- err
				}
				released <- struct{}{}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

func TestBarrierTimeoutAndConflict(t *testing.T) {
	_, c := newTest(t)
	ctx := context.Background()
	err := c.Barrier(ctx, "b", 2, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "408") || !strings.Contains(err.Error(), "1 of 2") {
		t.Fatalf("lonely barrier: got %v", err)
	}
	// The caller that gave up is not counted: two new callers are needed.
	done := make(chan error, 1)
	go func() { done <- c.Barrier(ctx, "b", 2, 5*time.Second) }()
	time.Sleep(100 * time.Millisecond)
	if err := c.Barrier(ctx, "b", 3, time.Second); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("different n while waiting: got %v, want 409", err)
	}
	if err := c.Barrier(ctx, "b", 2, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSignal(t *testing.T) {
	_, c := newTest(t)
	ctx := context.Background()
	got := make(chan int, 1)
	go func() {
		n, err := c.WaitSignal(ctx, "ready", 2, 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- n
	}()
	for want := 1; want <= 2; want++ {
		time.Sleep(50 * time.Millisecond)
		n, err := c.Signal(ctx, "ready")
		if err != nil || n != want {
			t.Fatalf("signal = %d, %v; want %d", n, err, want)
		}
	}
	if n := <-got; n != 2 {
		t.Fatalf("wait returned %d", n)
	}
	if _, err := c.WaitSignal(ctx, "ready", 5, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "2 of 5") {
		t.Fatalf("unmet wait: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	srv, _ := newTest(t)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodPost, "/barrier/x", 400},
		{http.MethodPost, "/barrier/x?n=0", 400},
		{http.MethodPost, "/barrier/x?n=2&wait=soon", 400},
		{http.MethodGet, "/kv/x?after=z", 400},
		{http.MethodGet, "/nope", 404},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
	}
}

func TestClientGoneLeavesBarrier(t *testing.T) {
	_, c := newTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Barrier(ctx, "g", 2, 10*time.Second) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done
	time.Sleep(100 * time.Millisecond)
	// Had the departed caller been counted, this one would be released alone.
	if err := c.Barrier(context.Background(), "g", 2, 200*time.Millisecond); err == nil {
		t.Fatal("a caller that left was still counted")
	}
}

// Every request but /healthz needs the lab's token; the URL hosts get
// carries it, so curl "$FORGELAB_COORD/..." and Client work unchanged.
func TestToken(t *testing.T) {
	srv, c := newTest(t)
	ctx := context.Background()
	if err := c.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	bare := "http://" + srv.URL[strings.LastIndex(srv.URL, "@")+1:]
	cases := []struct {
		name, url, header string
		code              int
	}{
		{"no token", bare + "/kv/k", "", 401},
		{"wrong password", URL(strings.TrimPrefix(bare, "http://"), "0123456789abcdef0123456789abcdee") + "/kv/k", "", 401},
		{"wrong bearer", bare + "/kv/k", "Bearer nope", 401},
		{"no token, barrier", bare + "/barrier/b?n=1", "", 401},
		{"bearer", bare + "/kv/k", "Bearer " + testToken, 200},
		{"in the URL", srv.URL + "/kv/k", "", 200},
		{"healthz needs none", bare + "/healthz", "", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodGet
			if strings.Contains(tc.url, "/barrier/") {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, tc.url, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("%s: %d %s, want %d", tc.url, resp.StatusCode, body, tc.code)
			}
			if tc.code == 401 && strings.Contains(string(body), "v") && string(body) == "v" {
				t.Fatal("the value leaked")
			}
		})
	}
	// An empty token on the server lets nothing in.
	open := httptest.NewServer(New("", Limits{}))
	defer open.Close()
	if resp, err := http.Get(open.URL + "/kv/k"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("server without a token: %v %v", resp, err)
	}
}

// The limits answer with what was hit, and the service keeps working.
func TestLimits(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("k", 17)
	cases := []struct {
		name   string
		limits Limits
		fill   func(c *Client) error // up to the limit: must succeed
		over   func(c *Client) error // one past it
		want   string
	}{
		{"keys", Limits{Keys: 2}, func(c *Client) error {
			c.Put(ctx, "a", nil)
			return c.Put(ctx, "b", nil)
		}, func(c *Client) error { return c.Put(ctx, "c", nil) }, "503"},
		{"replacing a key is no new key", Limits{Keys: 1}, func(c *Client) error { return c.Put(ctx, "a", nil) },
			func(c *Client) error {
				if err := c.Put(ctx, "a", []byte("2")); err != nil {
					return nil // replacing was refused: fails as "no error past the limit"
				}
				return c.Put(ctx, "b", nil)
			}, "503"},
		{"bytes", Limits{Bytes: 10}, func(c *Client) error { return c.Put(ctx, "a", []byte("0123456789")) },
			func(c *Client) error { return c.Put(ctx, "b", []byte("x")) }, "503"},
		{"value size", Limits{}, func(c *Client) error { return nil },
			func(c *Client) error { return c.Put(ctx, "a", make([]byte, MaxValue+1)) }, "413"},
		{"name length", Limits{NameLen: 16}, func(c *Client) error { return c.Put(ctx, long[:16], nil) },
			func(c *Client) error { return c.Put(ctx, long, nil) }, "414"},
		{"barriers and signals", Limits{Names: 2}, func(c *Client) error {
			if err := c.Barrier(ctx, "b1", 1, time.Second); err != nil {
				return err
			}
			_, err := c.Signal(ctx, "s1")
			return err
		}, func(c *Client) error { _, err := c.Signal(ctx, "s2"); return err }, "503"},
		{"waiters", Limits{Waiters: 2}, func(c *Client) error {
			for _, k := range []string{"w1", "w2"} {
				go c.Get(ctx, k, time.Second)
			}
			time.Sleep(100 * time.Millisecond)
			return nil
		}, func(c *Client) error { _, err := c.Get(ctx, "w3", 5*time.Second); return err }, "503"},
		{"waiters at a barrier", Limits{Waiters: 1}, func(c *Client) error {
			go c.Barrier(ctx, "b", 3, time.Second)
			time.Sleep(100 * time.Millisecond)
			return nil
		}, func(c *Client) error { return c.Barrier(ctx, "b", 3, 5*time.Second) }, "503"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newTestLimits(t, tc.limits)
			if err := tc.fill(c); err != nil {
				t.Fatalf("within the limit: %v", err)
			}
			err := tc.over(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("past the limit: got %v, want %s", err, tc.want)
			}
			t.Log(err)
			if _, err := c.Get(ctx, "nothing", 0); err == nil || !strings.Contains(err.Error(), "404") {
				t.Fatalf("afterwards: %v", err)
			}
		})
	}
}

// Listen binds the addresses it is given, never a wildcard.
func TestListen(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	lns, port, err := Listen([]netip.Addr{lo}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range lns {
		a := ln.Addr().(*net.TCPAddr)
		if !a.IP.Equal(lo.AsSlice()) || a.Port != port || a.IP.IsUnspecified() {
			t.Errorf("listening on %v, want %v:%d", a, lo, port)
		}
		ln.Close()
	}
	// The preferred port, taken: another one, not a failure.
	held, _, err := Listen([]netip.Addr{lo}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held[0].Close()
	taken := held[0].Addr().(*net.TCPAddr).Port
	lns, port, err = Listen([]netip.Addr{lo}, taken)
	if err != nil || port == taken {
		t.Fatalf("preferred port taken: port %d, %v", port, err)
	}
	lns[0].Close()
	for _, a := range []string{"0.0.0.0", "::"} {
		if lns, _, err := Listen([]netip.Addr{netip.MustParseAddr(a)}, 0); err == nil {
			lns[0].Close()
			t.Errorf("listened on %s", a)
		}
	}
}

package coord

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTest(t *testing.T) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewServer(New())
	t.Cleanup(srv.Close)
	return srv, &Client{Base: srv.URL}
}

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

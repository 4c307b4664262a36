package coord

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to a Server, for workloads written in Go (shell workloads
// use curl, see the package documentation).
type Client struct {
	Base string       // $FORGELAB_COORD, e.g. http://forgelab:TOKEN@10.213.7.1:7070 (see URL)
	HTTP *http.Client // nil: http.DefaultClient
}

func (c *Client) do(ctx context.Context, method, p string, q url.Values, body io.Reader) (*http.Response, []byte, error) {
	u := strings.TrimRight(c.Base, "/") + p
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxValue+1))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 300 {
		return resp, data, fmt.Errorf("coord %s %s: %s: %s", method, p, resp.Status, strings.TrimSpace(string(data)))
	}
	return resp, data, nil
}

func waitQuery(wait time.Duration) url.Values {
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	return q
}

// Put sets key to value.
func (c *Client) Put(ctx context.Context, key string, value []byte) error {
	_, _, err := c.do(ctx, http.MethodPut, "/kv/"+key, nil, strings.NewReader(string(value)))
	return err
}

// Get returns key's value, waiting up to wait for it to be set (0: no wait).
func (c *Client) Get(ctx context.Context, key string, wait time.Duration) ([]byte, error) {
	_, data, err := c.do(ctx, http.MethodGet, "/kv/"+key, waitQuery(wait), nil)
	return data, err
}

// Barrier returns when n callers (this one included) have arrived.
func (c *Client) Barrier(ctx context.Context, name string, n int, wait time.Duration) error {
	q := waitQuery(wait)
	q.Set("n", strconv.Itoa(n))
	_, _, err := c.do(ctx, http.MethodPost, "/barrier/"+url.PathEscape(name), q, nil)
	return err
}

// Signal adds one to name's count and returns the new count.
func (c *Client) Signal(ctx context.Context, name string) (int, error) {
	_, data, err := c.do(ctx, http.MethodPost, "/signal/"+url.PathEscape(name), nil, nil)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// WaitSignal returns when name's count reaches n.
func (c *Client) WaitSignal(ctx context.Context, name string, n int, wait time.Duration) (int, error) {
	q := waitQuery(wait)
	q.Set("n", strconv.Itoa(n))
	_, data, err := c.do(ctx, http.MethodGet, "/signal/"+url.PathEscape(name), q, nil)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

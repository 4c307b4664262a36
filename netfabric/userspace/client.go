package userspace

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// Client controls a fabricd over its unix socket. It implements
// netfabric.Shaper and netfabric.Capturer, so the orchestrator treats the
// userspace fabric like any other shaper. It keeps one connection open, so
// a quality change costs one round trip (tens of microseconds).
type Client struct {
	sock string

	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

var _ netfabric.Shaper = (*Client)(nil)
var _ netfabric.Capturer = (*Client)(nil)
var _ netfabric.Reseeder = (*Client)(nil)
var _ netfabric.Scheduler = (*Client)(nil)

// NewClient returns a client of the daemon listening on sockPath. It does
// not connect until the first call.
func NewClient(sockPath string) *Client { return &Client{sock: sockPath} }

// remoteError carries the daemon's message and lets errors.Is see the
// kind (unknown link, unknown host, unsupported) across the socket.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

func (c *Client) call(ctx context.Context, req request) (response, error) {
	return c.exchange(ctx, []request{req})
}

// exchange sends reqs in order on one connection and returns the last
// response, or the first one that carries an error. A broken connection
// is retried once, from the first request, on a fresh one: the daemon may
// have dropped an idle connection (or been restarted).
func (c *Client) exchange(ctx context.Context, reqs []request) (response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var resp response
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		for _, req := range reqs {
			if resp, err = c.roundTrip(ctx, req); err != nil || resp.Error != "" {
				break
			}
		}
		if err == nil {
			break
		}
		c.closeConn()
		if ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return resp, fmt.Errorf("fabric daemon at %s: %s: %w", c.sock, reqs[0].Op, err)
	}
	if resp.Error != "" {
		return resp, &remoteError{msg: resp.Error, kind: errorKinds[resp.Kind]}
	}
	return resp, nil
}

func (c *Client) roundTrip(ctx context.Context, req request) (response, error) {
	var resp response
	if c.conn == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", c.sock)
		if err != nil {
			return resp, err
		}
		c.conn, c.r = conn, bufio.NewReader(conn)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	_ = c.conn.SetDeadline(deadline)
	b, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return resp, err
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return resp, err
	}
	return resp, json.Unmarshal(line, &resp)
}

func (c *Client) closeConn() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// Close drops the client's connection (the daemon keeps running).
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeConn()
	return nil
}

// Name implements netfabric.Shaper.
func (c *Client) Name() string { return "userspace" }

// Setup checks that the daemon answers; it started with the declared
// qualities already.
func (c *Client) Setup(ctx context.Context) error {
	_, err := c.Ping(ctx)
	return err
}

// Ping returns the daemon's process id.
func (c *Client) Ping(ctx context.Context) (int, error) {
	r, err := c.call(ctx, request{Op: "ping"})
	return r.PID, err
}

// Set implements netfabric.Shaper.
func (c *Client) Set(ctx context.Context, link, from string, q netfabric.Impairment) error {
	_, err := c.call(ctx, request{Op: "set", Link: link, From: from, Quality: &q})
	return err
}

// SetUp implements netfabric.Shaper.
func (c *Client) SetUp(ctx context.Context, link string, up bool) error {
	op := "down"
	if up {
		op = "up"
	}
	_, err := c.call(ctx, request{Op: op, Link: link})
	return err
}

// Partition implements netfabric.Shaper.
func (c *Client) Partition(ctx context.Context, groups [][]string) error {
	_, err := c.call(ctx, request{Op: "partition", Groups: groups})
	return err
}

// Heal implements netfabric.Shaper.
func (c *Client) Heal(ctx context.Context) error {
	_, err := c.call(ctx, request{Op: "heal"})
	return err
}

// Reseed implements netfabric.Reseeder.
func (c *Client) Reseed(ctx context.Context) error {
	_, err := c.call(ctx, request{Op: "reseed"})
	return err
}

// Show implements netfabric.Shaper.
func (c *Client) Show(ctx context.Context) (netfabric.State, error) {
	r, err := c.call(ctx, request{Op: "show"})
	if err != nil || r.State == nil {
		return netfabric.State{}, err
	}
	return *r.State, nil
}

// scheduleChunk is how many changes one schedule request carries: a
// minute of 50 links at 10 Hz is a few parts of a few hundred KB each.
const scheduleChunk = 4096

// Schedule implements netfabric.Scheduler: the daemon gets the whole
// schedule (in parts if it is big) and applies each change itself at its
// due time. start is read by the wall clock, which the daemon shares.
func (c *Client) Schedule(ctx context.Context, start time.Time, changes []netfabric.TimedChange) error {
	parts := max(1, (len(changes)+scheduleChunk-1)/scheduleChunk)
	start = start.Round(0) // the wall reading is what travels
	reqs := make([]request, parts)
	for i := range reqs {
		part := changes[i*scheduleChunk : min(len(changes), (i+1)*scheduleChunk)]
		reqs[i] = request{Op: "schedule", Start: &start, Changes: part, Part: i, Parts: parts}
	}
	_, err := c.exchange(ctx, reqs)
	var re *remoteError
	if errors.As(err, &re) && re.kind == nil && strings.HasPrefix(re.msg, "unknown operation") {
		// A daemon started before schedules existed says only this.
		return fmt.Errorf("%w: the fabric daemon at %s predates timed schedules (restart the lab's fabric, or play the schedule from the runner with netfabric.Player)", netfabric.ErrUnsupported, c.sock)
	}
	return err
}

// CancelSchedule implements netfabric.Scheduler.
func (c *Client) CancelSchedule(ctx context.Context) error {
	_, err := c.call(ctx, request{Op: "schedule-cancel"})
	return err
}

// ScheduleStatus implements netfabric.Scheduler.
func (c *Client) ScheduleStatus(ctx context.Context, since int) (netfabric.ScheduleStatus, error) {
	r, err := c.call(ctx, request{Op: "schedule-status", Since: since})
	if err != nil || r.Schedule == nil {
		return netfabric.ScheduleStatus{}, err
	}
	return *r.Schedule, nil
}

// Teardown asks the daemon to stop. Stop (launch.go) also waits for the
// process to exit and cleans its files.
func (c *Client) Teardown(ctx context.Context) error {
	_, err := c.call(ctx, request{Op: "shutdown"})
	c.Close()
	return err
}

// Capture streams the link's pcap to w until ctx ends. It uses a
// connection of its own, so control calls go on meanwhile.
func (c *Client) Capture(ctx context.Context, link string, w io.Writer) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.sock)
	if err != nil {
		return fmt.Errorf("fabric daemon at %s: %w", c.sock, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	b, _ := json.Marshal(request{Op: "capture", Link: link})
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("capture %s: %w", link, err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("capture %s: %w", link, err)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("capture %s: %w", link, err)
	}
	if resp.Error != "" {
		return &remoteError{msg: resp.Error, kind: errorKinds[resp.Kind]}
	}
	_, err = io.Copy(w, r)
	if ctx.Err() != nil {
		return nil // the caller ended the capture
	}
	if err != nil {
		return fmt.Errorf("capture %s: %w", link, err)
	}
	return nil
}

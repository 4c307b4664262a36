package hypervisor

import (
	"context"
	"fmt"
	"time"
)

// DefaultCallTimeout bounds one libvirt operation (a lookup, a define, a
// start) when the caller's context has no earlier deadline. libvirt's C
// calls take no context: a libvirtd that hangs (stuck on a QEMU monitor,
// stopped, deadlocked) would otherwise hang create and destroy forever.
const DefaultCallTimeout = 90 * time.Second

// TimeoutError says libvirtd did not answer an operation in time.
type TimeoutError struct {
	Op    string
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s: libvirtd did not answer within %s: check it with `virsh list --all` (if that hangs too, libvirtd is stuck: restart it with `systemctl restart libvirtd`, or kill it and run `libvirtd -d`), then run the command again", e.Op, e.After.Round(time.Second))
}

// Timeout reports that libvirtd did not answer in time.
func (e *TimeoutError) Timeout() bool { return true }

// bounded runs f, one or more libvirt calls, and returns when it does, when
// ctx ends, or after c's call timeout, whichever comes first. A call
// abandoned this way goes on in its goroutine and ends when libvirtd
// answers (or never); its result is dropped. Anything it made was recorded
// in the lab's state before, so destroy still finds it.
func (c *Conn) bounded(ctx context.Context, op string, f func() error) error {
	_, err := boundedValue(ctx, c, op, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

// boundedValue is bounded for calls with a result.
func boundedValue[T any](ctx context.Context, c *Conn, op string, f func() (T, error)) (T, error) {
	var zero T
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	limit := c.callTimeout
	if limit <= 0 {
		limit = DefaultCallTimeout
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned call does not block
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, fmt.Errorf("%s: %w (libvirtd had not answered yet)", op, ctx.Err())
	case <-timer.C:
		return zero, &TimeoutError{Op: op, After: limit}
	}
}

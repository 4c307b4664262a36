package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Long operations: a lock held for one of these is not waited for, the
// caller is told at once (as before there was a control path).
var longOps = map[string]bool{"create": true, "destroy": true, "deploy": true}

// LockWait is how long Lock waits for a short operation (a change to a
// running lab) that holds the lock.
const LockWait = 30 * time.Second

// Lock takes the lab's exclusive lock: every change to a lab (create,
// destroy, deploy, and each call of the control path) holds it, so two
// processes never change one lab at once and nothing changes a lab while
// it is destroyed. op says what the holder does, for the message another
// process shows. A lock held by a long operation (create, destroy,
// deploy) fails at once; one held by a change to a running lab is waited
// for, up to LockWait or until ctx ends.
//
// The lock file is made once and never removed: removing it would let a
// second process lock a new file while a third still holds the old one.
func (s *Store) Lock(ctx context.Context, name, op string) (unlock func(), err error) {
	l, err := s.Lab(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.labsDir(), 0o755); err != nil {
		return nil, fmt.Errorf("lock lab %s: %w", name, err)
	}
	f, err := os.OpenFile(l.lockPath(), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock lab %s: %w", name, err)
	}
	held, err := lockFile(ctx, f, name)
	if err != nil {
		return nil, err
	}
	// Say who holds it, for the processes that wait.
	held.Truncate(0)
	held.WriteAt([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), op)), 0)
	return func() {
		// Clear the holder first: a process that finds the lock taken by
		// the next holder, before that one has written its name, must not
		// read this one's (a stale "create" refused changes at once).
		held.Truncate(0)
		syscall.Flock(int(held.Fd()), syscall.LOCK_UN)
		held.Close()
	}, nil
}

// lockFile takes the flock of the lock file f is open on, and returns
// the descriptor that holds it; it closes f when that is not f. A holder
// doing a long operation is not waited for; a short one is, in a
// blocking flock, so the kernel wakes this process as soon as the lock is
// free (polling would starve behind a caller that changes the lab in a
// tight loop).
func lockFile(ctx context.Context, f *os.File, name string) (*os.File, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return f, nil
	}
	defer f.Close()
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("lock lab %s: %w", name, err)
	}
	if holder, pid := readHolder(f); longOps[holder] {
		return nil, busyError(name, holder, pid)
	}
	// The blocking flock cannot be interrupted: it gets a descriptor of
	// its own, released later if it succeeds after we gave up.
	g, err := os.OpenFile(f.Name(), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("lock lab %s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(g.Fd()), syscall.LOCK_EX) }()
	timer := time.NewTimer(LockWait)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("lock lab %s: %w", name, err)
		}
		return g, nil
	case <-ctx.Done():
		err = fmt.Errorf("lock lab %s: %w", name, ctx.Err())
	case <-timer.C:
		holder, pid := readHolder(f)
		err = busyError(name, holder, pid)
	}
	go func() {
		if <-done == nil {
			syscall.Flock(int(g.Fd()), syscall.LOCK_UN)
		}
		g.Close()
	}()
	return nil, err
}

// readHolder reads "PID OP" from a lock file; the holder may not have
// written it yet (then it is the previous holder's, or empty).
func readHolder(f *os.File) (op string, pid int) {
	buf := make([]byte, 128)
	n, _ := f.ReadAt(buf, 0)
	fields := strings.Fields(string(buf[:n]))
	if len(fields) != 2 {
		return "", 0
	}
	pid, _ = strconv.Atoi(fields[0])
	return fields[1], pid
}

func busyError(name, op string, pid int) error {
	if op == "" {
		return fmt.Errorf("lab %s is busy: another forgelab process is changing it (try again when it is done)", name)
	}
	return fmt.Errorf("lab %s is busy: forgelab process %d is running %s on it (try again when it is done)", name, pid, op)
}

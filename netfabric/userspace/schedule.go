package userspace

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric"
)

// schedule is a timed schedule the engine applies itself. One timerfd,
// armed at the next change's due time, wakes one goroutine (runSchedule),
// which applies everything due under the engine's control lock: no
// goroutine or sleep per change, and a wake-up as precise as the kernel's
// timers, which Go's own timers (about 1 ms late on Linux) are not.
type schedule struct {
	start   time.Time
	changes []netfabric.TimedChange // as given
	order   []int                   // indexes into changes, in due order
	due     []int64                 // engine clock, per position in order
	next    int                     // position in order of the next change
	state   string
	records []netfabric.AppliedChange
}

// schedTimer is the timerfd runSchedule sleeps on. It is blocking: the
// schedule's goroutine keeps an OS thread of its own and sleeps in read,
// so the kernel wakes that very thread when a change is due (see
// runSchedule).
type schedTimer struct {
	fd     int
	closed atomic.Bool // tells runSchedule to return at its next wake-up
}

func newSchedTimer() (*schedTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("schedule timerfd: %w", err)
	}
	return &schedTimer{fd: fd}, nil
}

// arm makes the timer fire at engine time at (0 disarms it).
func (t *schedTimer) arm(at int64) {
	its := unix.ItimerSpec{}
	if at != 0 {
		its.Value = unix.NsecToTimespec(max(at, 1))
	}
	_ = unix.TimerfdSettime(t.fd, unix.TFD_TIMER_ABSTIME, &its, nil)
}

// shut wakes runSchedule for good. Closing the fd would not end a read
// blocked on it, so the timer fires at once instead (a time long past)
// and the flag says why.
func (t *schedTimer) shut() {
	t.closed.Store(true)
	t.arm(1)
}

// close frees the fd, once runSchedule has returned (or never ran).
func (t *schedTimer) close() { unix.Close(t.fd) }

var _ netfabric.Scheduler = (*Engine)(nil)

// Schedule implements netfabric.Scheduler: the engine applies each change
// at start + At by its own clock. A bad change refuses the whole schedule
// and leaves any pending one running.
func (e *Engine) Schedule(_ context.Context, start time.Time, changes []netfabric.TimedChange) error {
	order, err := e.cfg.Links.CheckSchedule(changes)
	if err != nil {
		return err
	}
	changes = netfabric.CloneChanges(changes)
	// start may come from another process (wall clock only): place it on
	// the engine clock through the wall clock once, then stay monotonic.
	startMono := e.now() + int64(time.Until(start))
	s := &schedule{start: start, changes: changes, order: order, due: make([]int64, len(order)), state: netfabric.ScheduleRunning}
	for k, i := range order {
		s.due[k] = startMono + int64(changes[i].At)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("schedule: the engine has stopped (start the lab's fabric again)")
	}
	e.sched = s
	e.applyDueLocked()
	return nil
}

// CancelSchedule implements netfabric.Scheduler.
func (e *Engine) CancelSchedule(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cancelScheduleLocked()
	return nil
}

func (e *Engine) cancelScheduleLocked() {
	if s := e.sched; s != nil && s.state == netfabric.ScheduleRunning {
		s.state = netfabric.ScheduleCancelled
		e.schedTimer.arm(0)
	}
}

// ScheduleStatus implements netfabric.Scheduler.
func (e *Engine) ScheduleStatus(_ context.Context, since int) (netfabric.ScheduleStatus, error) {
	if since < 0 {
		return netfabric.ScheduleStatus{}, fmt.Errorf("schedule status: since %d is negative (0 asks for every record)", since)
	}
	e.mu.Lock()
	s := e.sched
	if s == nil {
		e.mu.Unlock()
		return netfabric.ScheduleStatus{State: netfabric.ScheduleNone}, nil
	}
	st := netfabric.ScheduleStatus{State: s.state, Start: s.start, Changes: len(s.changes), Applied: len(s.records)}
	// Copy under the lock, summarise outside it: sorting thousands of
	// records must not hold up a change that is due.
	st.Records = slices.Clone(s.records[min(since, len(s.records)):])
	e.mu.Unlock()
	if since == 0 {
		st.Lateness = netfabric.LatenessOf(st.Records)
	}
	return st, nil
}

// runSchedule is the schedule's goroutine: it wakes on the timer and
// applies what is due. It keeps its OS thread and asks for the lowest
// real-time priority (SCHED_FIFO 1; failing that nice -10; failing that
// it runs as it is): on a host whose cores the VMs keep busy, a
// normal-priority thread waits milliseconds for a core after the timer
// fires. It does microseconds of work per change, so it takes little
// from anyone. It returns after shut.
func (e *Engine) runSchedule() {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	raisePriority()
	var tick [8]byte
	for {
		_, err := unix.Read(e.schedTimer.fd, tick[:])
		if e.schedTimer.closed.Load() {
			return
		}
		if err != nil && err != unix.EINTR && err != unix.EAGAIN {
			return // cannot happen on a timerfd; do not spin
		}
		e.mu.Lock()
		e.applyDueLocked()
		e.mu.Unlock()
	}
}

// raisePriority raises the calling thread's scheduling priority where the
// process may (root, or CAP_SYS_NICE).
func raisePriority() {
	if unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}, 0) == nil {
		return
	}
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -10) // this thread only, on Linux
}

// applyDueLocked applies every change due by now, in order, records when
// each took effect, and arms the timer for the next one. Called with e.mu
// held, so scheduled and direct changes never interleave halfway.
func (e *Engine) applyDueLocked() {
	s := e.sched
	if s == nil || s.state != netfabric.ScheduleRunning {
		return
	}
	for s.next < len(s.order) && s.due[s.next] <= e.now() {
		i := s.order[s.next]
		c := s.changes[i]
		e.applyLocked(c)
		// The change is in effect now: the lines read their quality under
		// their own lock, which applyLocked has taken and released.
		applied := e.now()
		s.records = append(s.records, netfabric.AppliedChange{Index: i, At: c.At, Late: time.Duration(applied - s.due[s.next])})
		s.next++
	}
	if s.next == len(s.order) {
		s.state = netfabric.ScheduleDone
		e.schedTimer.arm(0)
		return
	}
	e.schedTimer.arm(s.due[s.next])
}

// applyLocked applies one validated change. Called with e.mu held.
func (e *Engine) applyLocked(c netfabric.TimedChange) {
	lk, err := e.link(c.Link)
	if err != nil {
		return // cannot happen: the schedule was checked against the links
	}
	if c.Quality != nil {
		e.setLocked(lk, c.From, *c.Quality)
	}
	if c.Up != nil {
		e.setUpLocked(lk, *c.Up)
	}
}

package procstat

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

var nan = math.NaN()

// Busy is a process that used CPU between two snapshots.
type Busy struct {
	PID      int
	Comm     string
	Workload string
	Service  string
	// CPU is the share of one CPU it used over the window (0.5 = half a
	// core).
	CPU float64
}

// BusyBetween lists the processes of b that used at least min of one CPU
// since a, over a window of seconds, busiest first. A process that is new
// in b counts from zero.
func BusyBetween(a, b *Snapshot, seconds, min float64) []Busy {
	if seconds <= 0 {
		return nil
	}
	before := map[int]uint64{}
	for _, p := range a.Procs {
		before[p.PID] = p.Ticks
	}
	var out []Busy
	for _, p := range b.Procs {
		d := p.Ticks
		if t, ok := before[p.PID]; ok {
			if t > d {
				continue // pid reused
			}
			d -= t
		}
		share := float64(d) / float64(b.ClockTicks) / seconds
		if share >= min && share > 0 {
			out = append(out, Busy{PID: p.PID, Comm: p.Comm, Workload: p.Workload, Service: p.Service, CPU: share})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CPU > out[j].CPU })
	return out
}

// Own returns the pids of the sampler itself in s: Self, its ancestors
// and its descendants.
func Own(s *Snapshot) map[int]bool {
	own := map[int]bool{}
	if s.Self == 0 {
		return own
	}
	parent := map[int]int{}
	children := map[int][]int{}
	for _, p := range s.Procs {
		parent[p.PID] = p.PPID
		children[p.PPID] = append(children[p.PPID], p.PID)
	}
	for pid := s.Self; pid > 1 && !own[pid]; pid = parent[pid] {
		own[pid] = true
	}
	todo := []int{s.Self}
	for len(todo) > 0 {
		pid := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, c := range children[pid] {
			if !own[c] {
				own[c] = true
				todo = append(todo, c)
			}
		}
	}
	return own
}

// ReadProc reads every process's stat under root (a /proc; tests give a
// tree of their own) without forking anything: the host side of the
// quiet check.
func ReadProc(root string) (*Snapshot, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", root, err)
	}
	s := &Snapshot{PageSize: uint64(os.Getpagesize()), ClockTicks: 100}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		p, err := parseStat(strings.TrimSpace(string(data)))
		if err != nil {
			continue
		}
		p.FDs = -1
		s.Procs = append(s.Procs, p)
	}
	return s, nil
}

package procstat

import (
	"math"
	"sort"
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

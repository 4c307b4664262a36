package quality

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/forgelab/forgelab/labs/mobility"
	"github.com/forgelab/forgelab/netfabric"
)

// Link is a link whose quality follows the distance between its hosts.
type Link struct {
	Name string
	// Endpoints: two hosts for a point-to-point link. A segment of more
	// hosts gets a quality per pair of hosts; see Change.
	Endpoints []string
	Model     Model
}

// Change is the new quality between two hosts of a link, due at a time
// from the start of the run. On a point-to-point link A and B are its two
// endpoints and the quality applies both ways. On a segment it is the
// quality between A and B only: the kernel and guest shapers can express
// it only per sender (netfabric's Set), so the lead must pick a rule there
// (e.g. the worst pair of each sender); the userspace engine can apply it
// per pair.
type Change struct {
	At       time.Duration
	Link     string
	A, B     string
	Distance float64 // metres, for the live status and the run record
	Quality  netfabric.Impairment
}

// Threshold is how much a quality must move, since the last change emitted
// for the same pair, to emit a new one. Going down or up always counts, and
// so does any change of the fields models do not vary smoothly
// (distribution, duplicate, reorder, corrupt, Gilbert-Elliott, limit).
type Threshold struct {
	Rate   float64       // relative: 0.01 = 1 % of the last rate emitted
	Delay  time.Duration // absolute
	Jitter time.Duration // absolute
	Loss   float64       // percentage points
}

// DefaultThreshold: 1 % of the rate, 0.1 ms of delay or jitter, 0.1
// percentage point of loss.
var DefaultThreshold = Threshold{Rate: 0.01, Delay: 100 * time.Microsecond, Jitter: 100 * time.Microsecond, Loss: 0.1}

// Options says when to sample.
type Options struct {
	Duration  time.Duration // how long to compute, from 0; required
	Interval  time.Duration // between samples; default 100ms (10 Hz)
	Threshold *Threshold    // nil: DefaultThreshold
}

// maxSamples keeps a typo in a duration from filling memory: a day at 10 Hz.
const maxSamples = 24 * 3600 * 10

// Timeline samples every link at 0, Interval, 2 x Interval, ... up to
// Duration and returns the changes worth applying: every pair's quality at
// 0, then a change whenever it moved past the threshold. The result is
// sorted by time, then by link order, then by pair order.
func Timeline(hosts map[string]mobility.Model, links []Link, opt Options) ([]Change, error) {
	if opt.Interval == 0 {
		opt.Interval = 100 * time.Millisecond
	}
	th := DefaultThreshold
	if opt.Threshold != nil {
		th = *opt.Threshold
	}
	switch {
	case opt.Duration <= 0:
		return nil, fmt.Errorf("quality timeline: duration %v must be more than 0 (set the scenario's duration)", opt.Duration)
	case opt.Interval < time.Millisecond:
		return nil, fmt.Errorf("quality timeline: interval %v is below 1ms (the default 100ms is 10 Hz)", opt.Interval)
	case opt.Duration/opt.Interval > maxSamples:
		return nil, fmt.Errorf("quality timeline: %v at %v is more than %d samples (shorten the duration or sample less often)", opt.Duration, opt.Interval, maxSamples)
	}
	// Hosts are numbered so that each sample computes each position once.
	var names []string
	index := map[string]int{}
	type pair struct {
		link   int
		a, b   int
		last   netfabric.Impairment
		talked bool
	}
	var pairs []pair
	var errs []error
	for li, l := range links {
		if l.Model == nil {
			errs = append(errs, fmt.Errorf("link %s: no quality model", l.Name))
		}
		if len(l.Endpoints) < 2 {
			errs = append(errs, fmt.Errorf("link %s: needs 2 endpoints, has %d", l.Name, len(l.Endpoints)))
		}
		ids := make([]int, len(l.Endpoints))
		for i, h := range l.Endpoints {
			if hosts[h] == nil {
				errs = append(errs, fmt.Errorf("link %s: host %q has no mobility model (every endpoint needs one; use model \"static\" for a host that stays)", l.Name, h))
			}
			id, ok := index[h]
			if !ok {
				id = len(names)
				index[h] = id
				names = append(names, h)
			}
			ids[i] = id
		}
		for i := range ids {
			for j := i + 1; j < len(ids); j++ {
				pairs = append(pairs, pair{link: li, a: ids[i], b: ids[j]})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	pos := make([]mobility.Vec, len(names))
	var out []Change
	for t := time.Duration(0); t <= opt.Duration; t += opt.Interval {
		for i, h := range names {
			pos[i] = hosts[h].Position(t)
		}
		for i := range pairs {
			p := &pairs[i]
			d := mobility.Dist(pos[p.a], pos[p.b])
			q := links[p.link].Model.At(d)
			if p.talked && !Significant(p.last, q, th) {
				continue
			}
			p.last, p.talked = q, true
			out = append(out, Change{At: t, Link: links[p.link].Name, A: names[p.a], B: names[p.b], Distance: d, Quality: q})
		}
	}
	return out, nil
}

// Significant reports whether going from a to b is worth applying.
func Significant(a, b netfabric.Impairment, th Threshold) bool {
	if a.Down != b.Down {
		return true
	}
	if a.Down {
		return false // nothing passes either way
	}
	if a.Distribution != b.Distribution || a.GE != b.GE || a.Duplicate != b.Duplicate ||
		a.Reorder != b.Reorder || a.Corrupt != b.Corrupt || a.Limit != b.Limit {
		return true
	}
	if a.RateBits != b.RateBits {
		if a.RateBits == 0 || b.RateBits == 0 { // limited <-> unlimited
			return true
		}
		if math.Abs(float64(b.RateBits-a.RateBits)) > th.Rate*float64(a.RateBits) {
			return true
		}
	}
	return absDur(b.Delay-a.Delay) > th.Delay || absDur(b.Jitter-a.Jitter) > th.Jitter || math.Abs(b.Loss-a.Loss) > th.Loss
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// Sample is every pair's quality at t, in link and pair order, whatever
// changed before: for a live status, or to put links right after a pause.
func Sample(hosts map[string]mobility.Model, links []Link, t time.Duration) ([]Change, error) {
	var out []Change
	for _, l := range links {
		if l.Model == nil {
			return nil, fmt.Errorf("link %s: no quality model", l.Name)
		}
		for i, a := range l.Endpoints {
			for _, b := range l.Endpoints[i+1:] {
				ma, mb := hosts[a], hosts[b]
				if ma == nil || mb == nil {
					return nil, fmt.Errorf("link %s: hosts %q and %q need mobility models (use model \"static\" for a host that stays)", l.Name, a, b)
				}
				d := mobility.Dist(ma.Position(t), mb.Position(t))
				out = append(out, Change{At: t, Link: l.Name, A: a, B: b, Distance: d, Quality: l.Model.At(d)})
			}
		}
	}
	return out, nil
}

package runs

import (
	"math"

	"github.com/forgelab/forgelab/netfabric"
)

// LinkSamples turns what a shaper's Show reports into one sample per link
// direction, in docs/metrics.md's units: seconds, bits per second, ratios
// 0-1. Counters a shaper does not keep are NaN.
func LinkSamples(st netfabric.State) []LinkSample {
	var out []LinkSample
	for _, l := range st.Links {
		for _, d := range l.Directions {
			q := d.Quality
			loss := q.Loss
			if !q.GE.IsZero() {
				loss = q.GE.MeanLoss()
			}
			s := LinkSample{
				Link:               l.Name,
				From:               d.From,
				Up:                 boolFloat(l.Up && !q.Down),
				RateBytesPerSecond: float64(q.RateBits) / 8,
				DelaySeconds:       q.Delay.Seconds(),
				JitterSeconds:      q.Jitter.Seconds(),
				LossRatio:          loss / 100,
				DuplicateRatio:     q.Duplicate / 100,
				CorruptRatio:       q.Corrupt / 100,
				ReorderRatio:       q.Reorder / 100,
			}
			setCounters(&s, d.Counters)
			out = append(out, s)
		}
	}
	return out
}

func setCounters(s *LinkSample, c *netfabric.Counters) {
	if c == nil {
		nan := math.NaN()
		for _, p := range []*float64{&s.RxPackets, &s.RxBytes, &s.TxPackets, &s.TxBytes,
			&s.DroppedLoss, &s.DroppedQueue, &s.DroppedDown, &s.DroppedPartition, &s.DroppedError, &s.DroppedOverrun, &s.DroppedPeerDown,
			&s.QueuedPackets} {
			*p = nan
		}
		return
	}
	s.RxPackets, s.RxBytes = float64(c.RxPackets), float64(c.RxBytes)
	s.TxPackets, s.TxBytes = float64(c.TxPackets), float64(c.TxBytes)
	s.DroppedLoss, s.DroppedQueue, s.DroppedDown = float64(c.DropLoss), float64(c.DropQueue), float64(c.DropDown)
	s.DroppedPartition, s.DroppedError, s.DroppedOverrun = float64(c.DropPartition), float64(c.DropError), float64(c.DropOverrun)
	s.DroppedPeerDown = float64(c.DropPeerDown)
	s.QueuedPackets = float64(c.Queued)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

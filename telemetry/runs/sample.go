package runs

import (
	"context"
	"errors"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// SampleLinks records the shaper's state every interval (1 s meets the
// format's promise of at least 1 Hz) until ctx ends. Record each quality
// change as it is applied with Links as well; this loop is the steady
// beat for the counters. A failing show is recorded once as a forgelab
// event, and again only when the error changes, so a dead engine does
// not flood events.jsonl.
func (r *Recorder) SampleLinks(ctx context.Context, every time.Duration, show func(context.Context) (netfabric.State, error)) {
	r.sample(ctx, every, "sample.links", func(ctx context.Context, at time.Time) error {
		st, err := show(ctx)
		if err != nil {
			return err
		}
		return r.Links(at, st)
	})
}

// SampleHosts records hosts' resources every interval until ctx ends;
// errors are handled as in SampleLinks.
func (r *Recorder) SampleHosts(ctx context.Context, every time.Duration, stats func(context.Context) ([]HostSample, error)) {
	r.sample(ctx, every, "sample.hosts", func(ctx context.Context, at time.Time) error {
		hs, err := stats(ctx)
		if err != nil {
			return err
		}
		return r.Host(at, hs...)
	})
}

func (r *Recorder) sample(ctx context.Context, every time.Duration, action string, once func(context.Context, time.Time) error) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := ""
	for {
		if err := once(ctx, time.Now()); err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrClosed) {
				return
			}
			if err.Error() != last {
				last = err.Error()
				_ = r.Event(Event{Source: SourceForgelab, Action: action, Error: last})
			}
		} else if err == nil {
			last = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

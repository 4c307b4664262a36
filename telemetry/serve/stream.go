package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
)

// Snapshot is a lab at one moment: what the live stream sends several
// times a second and GET .../snapshot answers once.
type Snapshot struct {
	Time      time.Time               `json:"time"`
	Phase     string                  `json:"phase"`
	Hosts     []backend.Host          `json:"hosts"` // positions and states now
	Links     netfabric.State         `json:"links"`
	Domains   []backend.DomainStats   `json:"domains"`
	Workloads []backend.WorkloadValue `json:"workloads"`
	Scenario  backend.ScenarioStatus  `json:"scenario"`
	// Events are those logged since the previous snapshot of this stream.
	Events []backend.Event `json:"events"`
	// Paths are the demo conversations' routes, where the backend knows them.
	Paths []backend.Path `json:"paths,omitempty"`
}

// snapshot reads a lab; events after *cursor are included and the cursor
// moves past them.
func (s *Server) snapshot(ctx context.Context, lab string, cursor *int64) (*Snapshot, *backend.Topology, error) {
	t, err := s.b.Topology(ctx, lab)
	if err != nil {
		return nil, nil, err
	}
	snap := &Snapshot{Time: time.Now().UTC(), Phase: t.Phase, Hosts: t.Hosts}
	if snap.Links, err = s.b.Links(ctx, lab); err != nil {
		return nil, nil, fmt.Errorf("links of %s: %w", lab, err)
	}
	if snap.Domains, err = s.b.DomainStats(ctx, lab); err != nil {
		return nil, nil, fmt.Errorf("domain stats of %s: %w", lab, err)
	}
	if snap.Workloads, err = s.b.Workloads(ctx, lab); err != nil {
		return nil, nil, fmt.Errorf("workloads of %s: %w", lab, err)
	}
	if snap.Scenario, err = s.b.Scenario(ctx, lab); err != nil {
		return nil, nil, fmt.Errorf("scenario of %s: %w", lab, err)
	}
	if p, ok := s.b.(backend.Paths); ok {
		if snap.Paths, err = p.Paths(ctx, lab); err != nil {
			return nil, nil, fmt.Errorf("paths of %s: %w", lab, err)
		}
	}
	if cursor != nil {
		if snap.Events, *cursor, err = s.b.Events(ctx, lab, *cursor, 500); err != nil {
			return nil, nil, fmt.Errorf("events of %s: %w", lab, err)
		}
	}
	return snap, t, nil
}

func (s *Server) snapshotOnce(w http.ResponseWriter, r *http.Request) {
	snap, _, err := s.snapshot(r.Context(), r.PathValue("lab"), nil)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, snap)
}

// shape names a topology's hosts and links: when it changes (the lab was
// destroyed and made again) the stream sends the topology anew.
func shape(t *backend.Topology) string {
	var b strings.Builder
	for _, h := range t.Hosts {
		fmt.Fprintf(&b, "h %s %s\n", h.Name, h.Kind)
	}
	for _, l := range t.Links {
		fmt.Fprintf(&b, "l %s %v\n", l.Name, l.Endpoints)
	}
	return b.String()
}

// stream is GET .../stream: Server-Sent Events. "topology" first and
// whenever the lab's shape changes, "events" with the log after ?after=
// (0: from the start), then a "snapshot" every interval (?interval_ms=,
// 50 to 5000) with the events since the last one, "error" when one read
// failed (the stream goes on), and "gone" when the lab no longer exists
// (the stream ends). Clients of one lab and interval share one feed.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	lab := r.PathValue("lab")
	interval := s.interval
	if v := r.URL.Query().Get("interval_ms"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 50 || n > 5000 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("interval_ms=%q: want a number from 50 to 5000", v))
			return
		}
		interval = time.Duration(n) * time.Millisecond
	}
	var cursor int64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("after=%q: want an event cursor (a number)", v))
			return
		}
		cursor = n
	}
	ctx := r.Context()
	t, err := s.b.Topology(ctx, lab)
	if err != nil {
		fail(w, err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("this connection cannot stream"))
		return
	}
	// Join the lab's feed before reading the backlog: no event falls
	// between the two.
	sub, upto, err := s.feeds.join(ctx, lab, interval)
	if err != nil {
		fail(w, err)
		return
	}
	defer s.feeds.leave(lab, interval, sub)
	backlog, _, err := s.b.Events(ctx, lab, cursor, 500)
	if err != nil {
		fail(w, err)
		return
	}
	backlog = slices.DeleteFunc(backlog, func(e backend.Event) bool { return e.Seq > upto })

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	write := func(fr frame) bool {
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", fr.event, fr.data); err != nil {
			return false // the client went away
		}
		flusher.Flush()
		return true
	}
	if !write(encode("topology", t)) || (len(backlog) > 0 && !write(encode("events", EventsPage{Events: backlog, Next: upto}))) {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case fr, ok := <-sub.ch:
			if !ok {
				return // too slow, or the lab is gone (after its frame)
			}
			if !write(fr) {
				return
			}
		}
	}
}

package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
)

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("encode answer: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, status int, err error) {
	data, _ := json.Marshal(apiError{Error: err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// status maps a backend's error to the HTTP status that tells whose
// mistake it was.
func status(err error) int {
	switch {
	case errors.Is(err, backend.ErrNotFound), errors.Is(err, netfabric.ErrUnknownLink), errors.Is(err, netfabric.ErrUnknownHost):
		return http.StatusNotFound
	case errors.Is(err, backend.ErrBadInput):
		return http.StatusBadRequest
	case errors.Is(err, backend.ErrConflict), errors.Is(err, netfabric.ErrUnsupported):
		return http.StatusConflict
	case errors.Is(err, backend.ErrUnsupported):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

func fail(w http.ResponseWriter, err error) { writeError(w, status(err), err) }

func (s *Server) labs(w http.ResponseWriter, r *http.Request) {
	ls, err := s.b.Labs(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	if ls == nil {
		ls = []backend.LabSummary{}
	}
	writeJSON(w, http.StatusOK, ls)
}

func (s *Server) topology(w http.ResponseWriter, r *http.Request) {
	t, err := s.b.Topology(r.Context(), r.PathValue("lab"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) links(w http.ResponseWriter, r *http.Request) {
	st, err := s.b.Links(r.Context(), r.PathValue("lab"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// EventsPage is the answer to GET .../events.
type EventsPage struct {
	Events []backend.Event `json:"events"`
	// Next is the cursor to ask with next (?after=).
	Next int64 `json:"next"`
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	after, limit := int64(0), 500
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("after=%q: want the cursor a previous answer gave as next (a number, 0 for the start)", v))
			return
		}
		after = n
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5000 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit=%q: want a number from 1 to 5000", v))
			return
		}
		limit = n
	}
	evs, next, err := s.b.Events(r.Context(), r.PathValue("lab"), after, limit)
	if err != nil {
		fail(w, err)
		return
	}
	if evs == nil {
		evs = []backend.Event{}
	}
	writeJSON(w, http.StatusOK, EventsPage{Events: evs, Next: next})
}

func (s *Server) runs(w http.ResponseWriter, r *http.Request) {
	rs, ok := s.b.(backend.Runs)
	if !ok {
		writeJSON(w, http.StatusOK, []backend.RunSummary{})
		return
	}
	list, err := rs.Runs(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	if list == nil {
		list = []backend.RunSummary{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	rs, ok := s.b.(backend.Runs)
	if !ok {
		writeError(w, http.StatusNotFound, errors.New("this server keeps no recorded runs"))
		return
	}
	run, err := rs.Run(r.Context(), r.PathValue("lab"), r.PathValue("run"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// mistakes worth telling the caller about, not things to ignore.
func decode(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("%w: read body: %v", backend.ErrBadInput, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body is not the JSON this call takes: %v", backend.ErrBadInput, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: body has data after its JSON object", backend.ErrBadInput)
	}
	return nil
}

// lab loads the topology a control call is checked against; a lab that
// is not ready cannot be changed.
func (s *Server) lab(r *http.Request) (*backend.Topology, error) {
	t, err := s.b.Topology(r.Context(), r.PathValue("lab"))
	if err != nil {
		return nil, err
	}
	if t.Phase != "" && t.Phase != "ready" {
		return nil, fmt.Errorf("%w: lab %s is %s, not ready: nothing to change", backend.ErrConflict, t.Lab, t.Phase)
	}
	return t, nil
}

func findLink(t *backend.Topology, name string) (*backend.Link, error) {
	i := slices.IndexFunc(t.Links, func(l backend.Link) bool { return l.Name == name })
	if i < 0 {
		var names []string
		for _, l := range t.Links {
			names = append(names, l.Name)
		}
		return nil, fmt.Errorf("%w: lab %s has no link %q (links: %s)", backend.ErrNotFound, t.Lab, name, strings.Join(names, ", "))
	}
	return &t.Links[i], nil
}

func findHost(t *backend.Topology, name string) (*backend.Host, error) {
	i := slices.IndexFunc(t.Hosts, func(h backend.Host) bool { return h.Name == name })
	if i < 0 {
		var names []string
		for _, h := range t.Hosts {
			names = append(names, h.Name)
		}
		return nil, fmt.Errorf("%w: lab %s has no host %q (hosts: %s)", backend.ErrNotFound, t.Lab, name, strings.Join(names, ", "))
	}
	return &t.Hosts[i], nil
}

// change is the shape of every call that changes a lab: the body read
// strictly into a Req and checked on its own (input), the lab read (it
// must be ready) and the request checked against it (check), the change
// made through the backend (do), and the answer: how things are now.
// Every check runs before the change, so a refused call changes nothing.
type change[Req any] struct {
	input  func(req *Req) error
	check  func(r *http.Request, t *backend.Topology, req *Req) error
	do     func(r *http.Request, source string, t *backend.Topology, req *Req) error
	answer func(r *http.Request, t *backend.Topology, req *Req) (any, error)
}

// handler is c as a control call (serve.go's control wraps it).
func (c change[Req]) handler(s *Server) func(w http.ResponseWriter, r *http.Request, source string) {
	return func(w http.ResponseWriter, r *http.Request, source string) {
		var req Req
		if err := decode(r, &req); err != nil {
			fail(w, err)
			return
		}
		if c.input != nil {
			if err := c.input(&req); err != nil {
				fail(w, err)
				return
			}
		}
		t, err := s.lab(r)
		if err != nil {
			fail(w, err)
			return
		}
		if c.check != nil {
			if err := c.check(r, t, &req); err != nil {
				fail(w, err)
				return
			}
		}
		if err := c.do(r, source, t, &req); err != nil {
			fail(w, err)
			return
		}
		v, err := c.answer(r, t, &req)
		if err != nil {
			fail(w, fmt.Errorf("the change is made, but %w", err))
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// linksNow answers a change with the links as they are now.
func linksNow[Req any](s *Server) func(*http.Request, *backend.Topology, *Req) (any, error) {
	return func(r *http.Request, t *backend.Topology, _ *Req) (any, error) {
		st, err := s.b.Links(r.Context(), t.Lab)
		if err != nil {
			return nil, fmt.Errorf("reading the links back failed: %w", err)
		}
		return st, nil
	}
}

// scenarioNow answers a change with the lab's scenario as it is now.
func scenarioNow[Req any](s *Server) func(*http.Request, *backend.Topology, *Req) (any, error) {
	return func(r *http.Request, t *backend.Topology, _ *Req) (any, error) {
		st, err := s.b.Scenario(r.Context(), t.Lab)
		if err != nil {
			return nil, fmt.Errorf("reading the scenario back failed: %w", err)
		}
		return st, nil
	}
}

// noBody is the body of calls that take none ({} or nothing).
type noBody struct{}

// LinkQualityRequest is the body of POST .../links/{link}/quality.
type LinkQualityRequest struct {
	// From is the sending host whose direction changes; "" for all.
	From string `json:"from"`
	backend.QualityChange
}

func (s *Server) setLink() change[LinkQualityRequest] {
	return change[LinkQualityRequest]{
		check: func(r *http.Request, t *backend.Topology, req *LinkQualityRequest) error {
			link := r.PathValue("link")
			l, err := findLink(t, link)
			if err != nil {
				return err
			}
			if req.From != "" && !slices.Contains(l.Endpoints, req.From) {
				return fmt.Errorf("%w: link %s has no endpoint %q (endpoints: %s)", backend.ErrNotFound, link, req.From, strings.Join(l.Endpoints, ", "))
			}
			// Check the result against the current quality here too, so an
			// impossible value is refused before any backend sees it.
			cur, err := s.b.Links(r.Context(), t.Lab)
			if err != nil {
				return err
			}
			for _, ls := range cur.Links {
				if ls.Name != link {
					continue
				}
				for _, d := range ls.Directions {
					if req.From == "" || d.From == req.From {
						if err := req.Apply(d.Quality).Validate(); err != nil {
							return fmt.Errorf("%w: link %s from %s: %v", backend.ErrBadInput, link, d.From, err)
						}
					}
				}
			}
			return nil
		},
		do: func(r *http.Request, source string, t *backend.Topology, req *LinkQualityRequest) error {
			return s.b.SetLink(r.Context(), source, t.Lab, r.PathValue("link"), req.From, req.QualityChange)
		},
		answer: linksNow[LinkQualityRequest](s),
	}
}

// LinkStateRequest is the body of POST .../links/{link}/state.
type LinkStateRequest struct {
	Up *bool `json:"up"`
}

func (s *Server) setLinkUp() change[LinkStateRequest] {
	return change[LinkStateRequest]{
		input: func(req *LinkStateRequest) error {
			if req.Up == nil {
				return fmt.Errorf(`%w: say {"up": false} to cut the link or {"up": true} to restore it`, backend.ErrBadInput)
			}
			return nil
		},
		check: func(r *http.Request, t *backend.Topology, _ *LinkStateRequest) error {
			_, err := findLink(t, r.PathValue("link"))
			return err
		},
		do: func(r *http.Request, source string, t *backend.Topology, req *LinkStateRequest) error {
			return s.b.SetLinkUp(r.Context(), source, t.Lab, r.PathValue("link"), *req.Up)
		},
		answer: linksNow[LinkStateRequest](s),
	}
}

// PartitionRequest is the body of POST .../partition.
type PartitionRequest struct {
	Groups [][]string `json:"groups"`
}

func (s *Server) partition() change[PartitionRequest] {
	return change[PartitionRequest]{
		check: func(r *http.Request, t *backend.Topology, req *PartitionRequest) error {
			if len(req.Groups) < 2 {
				return fmt.Errorf(`%w: a partition needs at least two groups of hosts, e.g. {"groups": [["a"], ["b", "c"]]}`, backend.ErrBadInput)
			}
			seen := map[string]bool{}
			for i, g := range req.Groups {
				if len(g) == 0 {
					return fmt.Errorf("%w: group %d is empty", backend.ErrBadInput, i+1)
				}
				for _, h := range g {
					if _, err := findHost(t, h); err != nil {
						return err
					}
					if seen[h] {
						return fmt.Errorf("%w: host %s is in two groups", backend.ErrBadInput, h)
					}
					seen[h] = true
				}
			}
			return nil
		},
		do: func(r *http.Request, source string, t *backend.Topology, req *PartitionRequest) error {
			return s.b.Partition(r.Context(), source, t.Lab, req.Groups)
		},
		answer: linksNow[PartitionRequest](s),
	}
}

func (s *Server) heal() change[noBody] {
	return change[noBody]{
		do: func(r *http.Request, source string, t *backend.Topology, _ *noBody) error {
			return s.b.Heal(r.Context(), source, t.Lab)
		},
		answer: linksNow[noBody](s),
	}
}

// HostActionRequest is the body of POST .../hosts/{host}/action.
type HostActionRequest struct {
	Action string `json:"action"`
}

func (s *Server) hostAction() change[HostActionRequest] {
	return change[HostActionRequest]{
		input: func(req *HostActionRequest) error {
			if !slices.Contains(backend.HostActions, req.Action) {
				return fmt.Errorf("%w: host action %q: want one of %s", backend.ErrBadInput, req.Action, strings.Join(backend.HostActions, ", "))
			}
			return nil
		},
		check: func(r *http.Request, t *backend.Topology, _ *HostActionRequest) error {
			h, err := findHost(t, r.PathValue("host"))
			if err != nil {
				return err
			}
			if h.Kind != "vm" {
				return fmt.Errorf("%w: host %s is %s, not a VM forgelab runs: it has no power actions", backend.ErrBadInput, h.Name, h.Kind)
			}
			return nil
		},
		do: func(r *http.Request, source string, t *backend.Topology, req *HostActionRequest) error {
			return s.b.HostAction(r.Context(), source, t.Lab, r.PathValue("host"), req.Action)
		},
		answer: func(r *http.Request, _ *backend.Topology, req *HostActionRequest) (any, error) {
			return map[string]string{"host": r.PathValue("host"), "action": req.Action}, nil
		},
	}
}

// ScenarioRequest is the body of POST .../scenario/start.
type ScenarioRequest struct {
	// Scenario is a scenario the lab knows; "" for the lab file's own.
	Scenario string `json:"scenario"`
}

func (s *Server) scenarioStart() change[ScenarioRequest] {
	return change[ScenarioRequest]{
		input: func(req *ScenarioRequest) error {
			if strings.ContainsAny(req.Scenario, "/\\") || strings.HasPrefix(req.Scenario, ".") {
				return fmt.Errorf("%w: scenario %q: name one the lab knows, not a path", backend.ErrBadInput, req.Scenario)
			}
			return nil
		},
		do: func(r *http.Request, source string, t *backend.Topology, req *ScenarioRequest) error {
			return s.b.StartScenario(r.Context(), source, t.Lab, req.Scenario)
		},
		answer: scenarioNow[ScenarioRequest](s),
	}
}

func (s *Server) scenarioStop() change[noBody] {
	return change[noBody]{
		do: func(r *http.Request, source string, t *backend.Topology, _ *noBody) error {
			return s.b.StopScenario(r.Context(), source, t.Lab)
		},
		answer: scenarioNow[noBody](s),
	}
}

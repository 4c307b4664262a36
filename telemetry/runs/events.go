package runs

import (
	"encoding/json"
	"fmt"
	"time"
)

// Sources of a change, as the control path names them.
const (
	SourceCLI      = "cli"
	SourceScenario = "scenario"
	SourceAPI      = "api"
	SourceUI       = "ui"
	SourceForgelab = "forgelab" // the runner itself: run start and end, resets
)

// Event is one line of events.jsonl: a change to the lab during the run.
type Event struct {
	Time   time.Time `json:"time"`
	T      float64   `json:"t"`      // seconds since the start of the run
	Source string    `json:"source"` // cli, scenario, api, ui, forgelab
	Action string    `json:"action"` // e.g. link.set, partition, marker
	// Args are the action's arguments, e.g. {"link": "ab", "loss": 0.05}.
	Args map[string]any `json:"args,omitempty"`
	// Result is what the change did, when it says more than "ok"; Error
	// is set when it failed (a failed change is data too).
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
	// Took is how long the change took, in seconds.
	Took float64 `json:"took,omitempty"`
}

// Event records a change. A zero Time means now; T is computed from Time.
func (r *Recorder) Event(e Event) error {
	if e.Source == "" || e.Action == "" {
		return fmt.Errorf("record event: source and action are required (got source %q, action %q)", e.Source, e.Action)
	}
	e.Time, e.T = r.stamp(e.Time)
	e.Time = e.Time.UTC()
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("record event %s: %w (args must be plain JSON values)", e.Action, err)
	}
	return r.events.appendLine(line)
}

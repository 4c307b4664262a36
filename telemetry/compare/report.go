package compare

import (
	"fmt"
	"time"

	"github.com/forgelab/forgelab/telemetry/anomaly"
	"github.com/forgelab/forgelab/telemetry/runs"
	"github.com/forgelab/forgelab/telemetry/stats"
)

// Report is what compare found; it marshals to the JSON of `-o json`.
type Report struct {
	Runs     []RunInfo `json:"runs"`
	Baseline int       `json:"baseline"` // index into Runs
	// Window is the stretch of scenario time (seconds) every run covers;
	// samples outside it are left out, so every run is judged on the same
	// part of the scenario.
	Window   [2]float64 `json:"window"`
	Warnings []string   `json:"warnings,omitempty"`
	Metrics  []Metric   `json:"metrics"`
	// Groupings are the condition buckets: by loss on a link, by the
	// scenario's phases.
	Groupings []Grouping `json:"groupings,omitempty"`
	// Statements say in sentences what the groupings' tables show for the
	// headline metrics.
	Statements []Statement  `json:"statements,omitempty"`
	Texts      []TextMetric `json:"texts,omitempty"`
	// Anomalies are what `forgelab runs check` flags in each run (leaks,
	// slow degradation, sudden drops), in the order of Runs. A drop the
	// scenario causes on purpose (a handover) is flagged too: read them
	// with the scenario in mind.
	Anomalies []RunAnomalies `json:"anomalies,omitempty"`
	// Markers are the baseline's scenario markers (for plots).
	Markers []Marker `json:"markers,omitempty"`
	Options Options  `json:"options"`
}

// RunAnomalies are the flagged findings of one run.
type RunAnomalies struct {
	Run      string            `json:"run"` // the run's label
	Findings []anomaly.Finding `json:"findings"`
}

// RunInfo is one run of the comparison.
type RunInfo struct {
	Name        string           `json:"name"` // LAB/ID
	Dir         string           `json:"dir"`
	Lab         string           `json:"lab"`
	ID          string           `json:"id"`
	Scenario    string           `json:"scenario,omitempty"`
	Variant     string           `json:"variant,omitempty"`
	Label       string           `json:"label"` // what tables and plots call it: the variant, else the lab
	Status      string           `json:"status"`
	Reason      string           `json:"reason,omitempty"`
	Start       time.Time        `json:"start"`
	Duration    float64          `json:"duration"` // seconds of scenario time it recorded
	Fingerprint runs.Fingerprint `json:"fingerprint"`
}

// Metric is one metric across the runs.
type Metric struct {
	ID       string `json:"id"`     // alice.delivery, link.ab.loss_percent
	Source   string `json:"source"` // workload or link
	Host     string `json:"host,omitempty"`
	Workload string `json:"workload,omitempty"`
	Link     string `json:"link,omitempty"`
	Field    string `json:"field"`
	Unit     string `json:"unit,omitempty"`
	// Direction is which way is better; absent when the name does not
	// say (then no statements are made about it).
	Direction stats.Direction `json:"direction,omitzero"`
	// Class is what kind of figure it is: delivery, goodput, latency,
	// loss, or "" for others.
	Class    string `json:"class,omitempty"`
	Headline bool   `json:"headline,omitempty"` // statements are made about it
	// Runs are in the order of Report.Runs.
	Runs []MetricRun `json:"runs"`
}

// MetricRun is one metric in one run.
type MetricRun struct {
	// Summary is nil when the run has no sample of the metric.
	Summary *stats.Summary `json:"summary,omitempty"`
	// Change is the relative change of the median against the baseline's
	// (+0.10: 10 % above), nil for the baseline itself or where undefined.
	Change *float64 `json:"change,omitempty"`
	// Overlap says the two medians' intervals overlap: the change may be
	// noise.
	Overlap bool `json:"overlap,omitempty"`
	// T and V are the samples in the window, for plots.
	T []float64 `json:"-"`
	V []float64 `json:"-"`
}

// Grouping is one way of putting samples into condition buckets.
type Grouping struct {
	By    string `json:"by"`    // "loss" or "phase"
	Title string `json:"title"` // "loss on ab (the worse direction; down = 100 %)"
	Link  string `json:"link,omitempty"`
	// Groups name the buckets, in order.
	Groups []Group `json:"groups"`
	// Rows hold, per metric with a direction, each run's buckets.
	Rows []GroupRow `json:"rows"`
	// Condition is the grouping's condition over time, per run (for
	// plots): the link's loss in percent, absent for phases.
	Condition []Curve `json:"-"`
}

// Group is one bucket of a grouping.
type Group struct {
	Label string  `json:"label"` // "5-10 %", "30-61 s: ab out of range (350 m)"
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Name  string  `json:"name,omitempty"` // a phase's marker label
}

// GroupRow is one metric's buckets in every run.
type GroupRow struct {
	Metric    string          `json:"metric"`
	Direction stats.Direction `json:"direction"`
	// Runs are in the order of Report.Runs; each has one bucket per
	// group, with OfBest relating its median to the run's own best bucket.
	Runs []stats.BucketTable `json:"runs"`
}

// Curve is a series of (t, value) for a plot.
type Curve struct {
	T []float64
	V []float64
}

// Statement is one sentence about one group and one metric.
type Statement struct {
	Grouping string `json:"grouping"` // loss or phase
	Group    string `json:"group"`
	Metric   string `json:"metric"`
	Text     string `json:"text"`
	// OfBest is each run's bucket median over its best bucket's, in the
	// order of Report.Runs; nil where the run had no sample there.
	OfBest []*float64 `json:"of_best"`
}

// TextMetric is a text field of a workload (a route, a state) whose value
// changed during a run: when it held which value.
type TextMetric struct {
	ID   string      `json:"id"`
	Runs [][]Segment `json:"runs"`
}

// Segment is a stretch of time over which a text field kept one value.
type Segment struct {
	Value string  `json:"value"`
	From  float64 `json:"from"`
	To    float64 `json:"to"`
}

// Marker is a scenario marker.
type Marker struct {
	T     float64 `json:"t"`
	Label string  `json:"label"`
}

func (r *Report) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// Metric returns the metric with the given id, or nil.
func (r *Report) Metric(id string) *Metric {
	for i := range r.Metrics {
		if r.Metrics[i].ID == id {
			return &r.Metrics[i]
		}
	}
	return nil
}

// Labels are the runs' labels in order.
func (r *Report) Labels() []string {
	out := make([]string, len(r.Runs))
	for i, ri := range r.Runs {
		out[i] = ri.Label
	}
	return out
}

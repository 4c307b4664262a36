// Package compare judges recorded runs against each other: the analysis
// behind `forgelab compare RUN RUN...`. docs/compare.md is the user's
// reference.
//
// Runs are read with telemetry/runs and aligned on scenario time (the
// column t: seconds since the start of each run), over the window every
// run covers. For each metric (every numeric field of every workload's
// JSON lines, and each link's loss and delivered bytes per second) it
// gives, per run, the median with its distribution-free 95 % interval and
// the change of the median against a baseline run (telemetry/stats).
//
// The condition-bucketed statements are the point: each sample of a
// metric is put in a group by the condition it happened under (the loss
// on one link at the sample's time, read from links.csv, in buckets such
// as 0-1 %, 1-5 %, 5-10 %, 10-100 % or down; and the scenario's phases
// between its markers), and each group's median is related to the run's
// own best group (stats.Buckets). That is what the sentences say: "with
// 10-100 % loss on ab or ab down, babeld kept 98 % of its delivery;
// static 0 %".
//
// Samples within a run are a time series, not independent draws, so the
// intervals describe the run's spread rather than promise what another
// run would give; repeated runs and a verdict are forgelab bench's.
//
// Load checks the input first and says what to do about it: fewer than
// two runs, unknown runs, runs that are not comparable (another scenario,
// other hosts or links: named), incomplete runs (refused unless allowed),
// metrics asked for that a run lacks. Differences of environment
// (kernel, CPU, accelerator, images, forgelab commit) are warnings.
// WriteText prints the report for people; the report itself marshals to
// JSON, and telemetry/report draws it as HTML and PNG.
package compare

// Package runs records an experiment run into a folder that outlives its
// lab, and reads it back: for `forgelab runs`, compare, bench and the web
// UI's replay. The folder is a stable file format that pandas, a
// spreadsheet or a shell reads directly; docs/runs.md is its reference.
//
//	<state-dir>/runs/<lab>/<run-id>/     run ids sort by start time: 20261201T234512Z-3f2a
//	  run.json            lab, id, scenario, variant, start/end (UTC, RFC 3339, ns),
//	                      status + reason, recorder pid, environment fingerprint,
//	                      files with their row counts
//	  lab.toml  scenario.toml  plan.json      the inputs as run
//	  events.jsonl        every change: time, t, source, action, args, result/error
//	  positions.csv       time, t, host, forgelab_host_position_meters{axis=x|y|z}
//	  links.csv           time, t, link, from, forgelab_link_* (quality and counters)
//	  hosts.csv           time, t, host, kind, domain, forgelab_host_up, libvirt_domain_* (CPU, memory, I/O)
//	  workloads/<host>-<name>.jsonl   each JSON line printed, "time" and "t" first
//	  workloads/<host>-<name>.stdout|.stderr   raw output
//	  services/<host>-<name>.log  serial/<host>.log  pcaps/<name>.pcap
//
// Every CSV has a header; its first columns are time (RFC 3339 UTC with
// nanoseconds) and t (seconds since the start of the run), then label
// columns, then value columns named as in docs/metrics.md, so a recorded
// series and the live /metrics endpoint agree. A metric label the row does
// not carry is written into the column name in braces:
// forgelab_link_dropped_packets_total{cause=loss}. An empty cell is an
// unknown value.
//
// Writing: Create starts a Recorder; its appends (Event, Position, Links,
// Host, WorkloadLine) only buffer in memory under a short lock, so the
// scenario never waits on the disk; a flusher writes at least once a
// second (FlushInterval), so a killed runner loses at most that much.
// Close writes the rest, fsyncs, and sets the final status.
//
// A run.json that says running while the process it names is gone (pid,
// start time and boot id no longer match) is reported as incomplete by
// List and Open: that is how a Ctrl-C'd or SIGKILLed runner shows up.
//
// Reading: List, Resolve, Open and the typed readers (Positions, Links,
// Hosts, Events, Workload), and Series/Select, which answer a metric
// selector such as forgelab_link_loss_ratio{link=ab,from=a} with (t,
// value) slices. Remove, Export and Import manage folders; names that
// would climb out of the runs folder are refused everywhere.
package runs

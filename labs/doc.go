// Package labs is the orchestrator: the only package that knows all the
// others. It answers "how is a lab made, changed and removed"; the
// questions before that have packages of their own, and data flows one
// way through them:
//
//	spec   the lab file: schema, defaults, validation (every problem at once, with file:line)
//	plan   every name, MAC and address, decided from the spec alone
//	store  the lab directory (one layout), its state, lock and event log
//	labs   create (named steps), destroy, inspect, and the control path
//	       for running labs (runtime.go), over narrow interfaces to the
//	       backends (VMs, Netdevs, Fabric, Images, Software); node
//	       addresses and routes in the hosts (routes.go); forgelab run
//	       (run.go: scenario, mobility and quality played through the
//	       control path, recorded with telemetry/runs)
//
// and beside them: scenario (scenario files, Play), mobility and quality
// (the models), routing (node addresses, static routes).
//
// Host kinds (hostkind.go) and fabrics (fabric.go) are types chosen in
// one map each; wiring.go is the one place the real backends are chosen.
package labs

package spec

import (
	"fmt"
	"strings"
)

// Host kinds, as the lab file names them. The orchestrator maps each to
// the type that boots or adopts it (labs/hostkind.go); adding a kind is
// one name here and one type there.
const (
	KindVM       = "vm"
	KindPhysical = "physical"
)

// Kinds lists every host kind, in the order error messages give them.
var Kinds = []string{KindVM, KindPhysical}

// Fabrics, as the lab file names them. The orchestrator maps each to its
// backend (labs/fabric.go); "auto" picks one for this machine.
const (
	FabricKernel    = "kernel"
	FabricUserspace = "userspace"
	FabricGuest     = "guest"
	FabricAuto      = "auto"
)

// Fabrics lists every fabric a lab file may name.
var Fabrics = []string{FabricKernel, FabricUserspace, FabricGuest, FabricAuto}

// Routing modes of [lab] routing (package routing does the work).
const (
	RoutingNone   = "none"
	RoutingStatic = "static"
)

// Routings lists every routing mode a lab file may name.
var Routings = []string{RoutingNone, RoutingStatic}

// Workload starts: by create, by each run, or only by a bench mode that
// names it (forgelab bench, the [bench] section).
const (
	StartCreate = "create"
	StartRun    = "run"
	StartBench  = "bench"
)

// Starts lists every start a workload may name.
var Starts = []string{StartCreate, StartRun, StartBench}

// quotedOr renders a list for an error message: "a", "b" or "c".
func quotedOr(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

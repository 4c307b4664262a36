package labs

import (
	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
)

// Names of the sub-packages' types as the orchestrator uses them, so code
// written against package labs keeps compiling. New code should name the
// sub-packages: spec (the lab file), plan (names and addresses), store
// (the lab directory and its state).
type (
	Spec         = spec.Spec
	LabSection   = spec.LabSection
	HostSpec     = spec.HostSpec
	SSHSpec      = spec.SSHSpec
	LinkSpec     = spec.LinkSpec
	Quality      = spec.Quality
	DeploySpec   = spec.DeploySpec
	ServiceSpec  = spec.ServiceSpec
	WorkloadSpec = spec.WorkloadSpec
	Error        = spec.Error
	Errors       = spec.Errors

	Plan     = plan.Plan
	MgmtPlan = plan.MgmtPlan
	HostPlan = plan.HostPlan
	NICPlan  = plan.NICPlan
	LinkPlan = plan.LinkPlan
)

type (
	Store       = store.Store
	State       = store.State
	Resource    = store.Resource
	HostState   = store.HostState
	AdoptedHost = store.AdoptedHost
	CoordState  = store.CoordState
	Recorder    = store.Recorder
)

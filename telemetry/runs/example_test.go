package runs_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// How `forgelab run` records a run, and how compare reads it back.
func Example() {
	stateDir, _ := os.MkdirTemp("", "forgelab-example-")
	defer os.RemoveAll(stateDir)

	fp := runs.HostFingerprint() // kernel, CPU, cores, memory, forgelab and Go versions
	fp.Accel, fp.Seed = "tcg", 42
	rec, err := runs.Create(runs.Root(stateDir), runs.Meta{Lab: "handover", Scenario: "drift", Variant: "babeld", Fingerprint: fp})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec.SaveLab([]byte("[lab]\nname = \"handover\"\n"))

	// Appends only buffer in memory: cheap enough for the scenario loop.
	// The runner records the shaper's state after each change it applies,
	// and `go rec.SampleLinks(ctx, time.Second, shaper.Show)` keeps the
	// one-second beat for the counters.
	ctx := context.Background()
	show := func(context.Context) (netfabric.State, error) { // the lab's shaper.Show
		return netfabric.State{Links: []netfabric.LinkState{{Name: "ab", Up: true,
			Directions: []netfabric.Direction{{From: "a", Quality: netfabric.Impairment{Loss: 5}}}}}}, nil
	}
	st, _ := show(ctx)
	rec.Links(time.Time{}, st)

	start := rec.Start()
	rec.Position(start.Add(100*time.Millisecond), runs.Position{Host: "a", X: -4})
	rec.Event(runs.Event{Source: runs.SourceScenario, Action: "link.set", Args: map[string]any{"link": "ab", "loss": 0.05}})
	rec.WorkloadLine(start.Add(time.Second), "b", "bob", runs.Stdout, []byte(`{"delivery": 0.97}`))

	// complete at the end of the scenario; incomplete after Ctrl-C; failed
	// when the run could not go on.
	if err := rec.Close(runs.StatusComplete, ""); err != nil {
		fmt.Println(err)
		return
	}

	list, _ := runs.List(runs.Root(stateDir), "handover")
	run, _ := runs.Open(list[0].Dir)
	bob, _ := run.Series(`forgelab_workload_value{host=b,workload=bob,field=delivery}`)
	loss, _ := run.Series(`forgelab_link_loss_ratio{link=ab,from=a}`)
	fmt.Println(list[0].Status, run.Meta.Variant, bob.T, bob.V, loss.V[0])
	// Output: complete babeld [1] [0.97] 0.05
}

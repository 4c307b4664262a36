package runs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

func TestSampleLinks(t *testing.T) {
	r, err := Create(t.TempDir(), Meta{Lab: "lab1"})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	show := func(context.Context) (netfabric.State, error) {
		// Fails on calls 2 and 3 with the same error: one event.
		switch calls.Add(1) {
		case 2, 3:
			return netfabric.State{}, errors.New("engine not answering")
		}
		return fixtureState(), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.SampleLinks(ctx, 10*time.Millisecond, show)
		close(done)
	}()
	for calls.Load() < 6 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if err := r.Close(StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	run, _ := Open(r.Dir())
	links, _ := run.Links()
	n := int(calls.Load())
	if len(links) != 3*(n-2) {
		t.Errorf("%d link rows after %d samples (2 failed), want %d", len(links), n, 3*(n-2))
	}
	events, _ := run.Events()
	if len(events) != 1 || events[0].Action != "sample.links" || events[0].Error != "engine not answering" {
		t.Errorf("events = %+v, want the one failure", events)
	}
}

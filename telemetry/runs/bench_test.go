package runs

import (
	"fmt"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// BenchmarkLinks: what one Links call costs the caller for 50 links (100
// directions), the size of issue 10's mobility bench. The flusher runs
// meanwhile, as in a real run.
func BenchmarkLinks(b *testing.B) {
	r, err := Create(b.TempDir(), Meta{Lab: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(StatusComplete, "")
	st := netfabric.State{}
	for i := range 50 {
		st.Links = append(st.Links, netfabric.LinkState{Name: fmt.Sprintf("l%d", i), Up: true, Directions: []netfabric.Direction{
			{From: "a", Quality: netfabric.Impairment{Delay: 5 * time.Millisecond, Loss: 1.5}, Counters: &netfabric.Counters{RxPackets: 12345}},
			{From: "b", Quality: netfabric.Impairment{Delay: 5 * time.Millisecond, Loss: 1.5}, Counters: &netfabric.Counters{RxPackets: 12345}},
		}})
	}
	b.ResetTimer()
	for b.Loop() {
		r.Links(time.Time{}, st)
	}
}

// BenchmarkPosition: one host's position, the 10 Hz mobility loop's call.
func BenchmarkPosition(b *testing.B) {
	r, err := Create(b.TempDir(), Meta{Lab: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(StatusComplete, "")
	for b.Loop() {
		r.Position(time.Time{}, Position{Host: "a", X: 1.5, Y: -3.25, Z: 0})
	}
}

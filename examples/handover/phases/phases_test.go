package phases

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/telemetry/runs"
)

// A made-up run: full delivery over eth1 until 25 s, none until 33 s,
// then full again via c's link.
func TestRead(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rec, err := runs.Create(t.TempDir(), runs.Meta{Lab: "h", Variant: "babeld", Start: start})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.SavePlan([]byte(`{"Hosts": [{"Name": "a", "NICs": [{"Link": "ab", "Name": "eth1"}, {"Link": "ca", "Name": "eth2"}]}]}`)); err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 60; s++ {
		delivered, lost, dev, via := 100, 0, "eth1", ""
		if s > 25 && s <= 33 {
			delivered, lost = 0, 100
		}
		if s > 33 {
			dev, via = "eth2", "198.18.2.1"
		}
		if s < 5 {
			dev = "eth2" // a routing daemon settling: not the handover
		}
		line := fmt.Sprintf(`{"role":"alice","delivered":%d,"lost":%d,"dev":%q,"via":%q}`, delivered, lost, dev, via)
		if err := rec.WorkloadLine(start.Add(time.Duration(s)*time.Second), "a", "alice", runs.Stdout, []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(runs.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	s, err := Read(rec.Dir())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"before": 1, "during": 0.5, "after": 27.0 / 30, "last 15 s": 1}
	for k, w := range want {
		if math.Abs(s.Delivery[k]-w) > 1e-9 {
			t.Errorf("delivery %s = %v, want %v", k, s.Delivery[k], w)
		}
	}
	if s.FirstDev != "eth2" || s.Direct != "eth1" || s.Moved != 34 || s.MovedTo != "eth2 via 198.18.2.1" {
		t.Errorf("route: %+v", s)
	}
	var b strings.Builder
	Print(&b, []Summary{s, s})
	if !strings.Contains(b.String(), "at 34 s to eth2 via 198.18.2.1") || !strings.Contains(b.String(), "50 %") {
		t.Errorf("printed:\n%s", b.String())
	}
}

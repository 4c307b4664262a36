package plan

import (
	"github.com/forgelab/forgelab/labs/spec"

	"strings"
	"testing"
)

func TestEtcHosts(t *testing.T) {
	s, err := spec.Parse("lab.toml", []byte(`
[lab]
name = "h"
[[host]]
name = "a"
[[host]]
name = "b"
[[host]]
name = "c"
[[link]]
name = "ab"
endpoints = ["a", "b"]
subnet4 = "10.1.0.0/24"
subnet6 = "fd00:1::/64"
[[link]]
name = "bc"
endpoints = ["b", "c"]
subnet4 = "10.2.0.0/24"
subnet6 = "fd00:2::/64"
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	got := EtcHosts(p, "a")
	for _, want := range []string{
		"10.1.0.2\tb.ab\n", "fd00:1::2\tb.ab\n", // b on each of its links
		"10.2.0.1\tb.bc\n",
		"10.1.0.2\tb\n", "fd00:1::2\tb\n", // b by name: the link a shares with b
		"10.2.0.2\tc\n", // c shares no link with a: its first data address
		p.Host("b").MgmtIP.String() + "\tb.mgmt\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts for a lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\ta\n") {
		t.Errorf("hosts for a names a itself:\n%s", got)
	}
}

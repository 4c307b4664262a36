package labs

import (
	"strings"
	"testing"

	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/labs/spec"
)

// Each host's boot script puts its node addresses on node0; with static
// routing it also routes to the others' node addresses along the direct
// link (a triangle: every pair is one hop).
func TestRouteScripts(t *testing.T) {
	lab := func(routing string) *Plan {
		s, err := spec.Parse("lab.toml", []byte(`
[lab]
name = "tri"
routing = "`+routing+`"
[[host]]
name = "a"
[[host]]
name = "b"
[[host]]
name = "c"
[[link]]
name = "ab"
endpoints = ["a", "b"]
[[link]]
name = "bc"
endpoints = ["b", "c"]
`))
		if err != nil {
			t.Fatal(err)
		}
		p, err := plan.NewPlan(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		routing     string
		host        string
		want, avoid []string
	}{
		{"none", "a", []string{"ip link add node0 type dummy", "net.ipv4.ip_forward=1"}, []string{"route replace"}},
		{"static", "a", []string{"ip addr replace {a4}/32 dev node0", "ip route replace {c4}/32 via {b.ab} dev eth1"}, nil},
		{"static", "c", []string{"ip route replace {a4}/32 via {b.bc} dev eth1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.routing+"/"+tt.host, func(t *testing.T) {
			p := lab(tt.routing)
			scripts, unreachable, err := RouteScripts(p)
			if err != nil || len(unreachable) > 0 {
				t.Fatal(err, unreachable)
			}
			subst := strings.NewReplacer("{a4}", p.Host("a").Node4.String(), "{c4}", p.Host("c").Node4.String(),
				"{b.ab}", p.Host("b").NICs[0].Addresses[0].Addr().String(), "{b.bc}", p.Host("b").NICs[1].Addresses[0].Addr().String())
			got := scripts[tt.host]
			for _, w := range tt.want {
				if w = subst.Replace(w); !strings.Contains(got, w) {
					t.Errorf("script of %s lacks %q:\n%s", tt.host, w, got)
				}
			}
			for _, w := range tt.avoid {
				if strings.Contains(got, w) {
					t.Errorf("script of %s has %q:\n%s", tt.host, w, got)
				}
			}
		})
	}
}

package provision

import (
	"net/netip"
	"strings"
	"testing"
)

func testFacts() Facts {
	p := netip.MustParsePrefix
	a := HostFacts{Name: "a", Mgmt: netip.MustParseAddr("10.213.7.11"), Position: [3]float64{0, 0, 0}, Links: []LinkFacts{
		{Name: "ab", Peers: []string{"b"}, Addresses: []netip.Prefix{p("10.1.0.1/30"), p("fd00:1::1/64")}},
		{Name: "lan", Peers: []string{"c", "b"}, Addresses: []netip.Prefix{p("10.9.0.1/24")}},
	}}
	b := HostFacts{Name: "b", Mgmt: netip.MustParseAddr("10.213.7.12"), Position: [3]float64{100, 0, 0}, Links: []LinkFacts{
		{Name: "ab", Peers: []string{"a"}, Addresses: []netip.Prefix{p("10.1.0.2/30"), p("fd00:1::2/64")}},
		{Name: "lan", Peers: []string{"a", "c"}, Addresses: []netip.Prefix{p("10.9.0.2/24")}},
	}, Node4: netip.MustParseAddr("10.254.1.2"), Node6: netip.MustParseAddr("fd00:f1::2")}
	c := HostFacts{Name: "c", Links: []LinkFacts{
		{Name: "lan", Peers: []string{"a", "b"}, Addresses: []netip.Prefix{p("fd00:9::3/64")}},
	}}
	return Facts{Lab: "demo", Seed: 42, Host: a, Hosts: map[string]HostFacts{"a": a, "b": b, "c": c}}
}

func TestRender(t *testing.T) {
	f := testFacts()
	for _, tc := range []struct{ name, text, want string }{
		{"plain", "no templates", "no templates"},
		{"host", "{{ .Host.Name }}/{{ .Name }}@{{ .Lab }} seed {{ .Seed }}", "a/a@demo seed 42"},
		{"ip", `{{ ip "b" }}`, "10.1.0.2"},
		{"ip on link", `{{ ip "b" "lan" }}`, "10.9.0.2"},
		{"ip6", `{{ ip6 "b" }}`, "fd00:1::2"},
		{"ip6 on link", `{{ ip6 "c" "lan" }}`, "fd00:9::3"},
		{"own ip", `{{ ip "a" "lan" }}`, "10.9.0.1"},
		{"mgmt", `{{ mgmt "b" }}`, "10.213.7.12"},
		{"node", `{{ node "b" }}`, "10.254.1.2"},
		{"node6", `{{ node6 "b" }}`, "fd00:f1::2"},
		{"peers", `{{ join .Peers "," }}`, "b,c"},
		{"peers func", `{{ join (peers) " " }}|{{ join (peers "ab") " " }}`, "b c|b"},
		{"addresses", `{{ range .Host.Addresses }}{{ . }} {{ end }}`, "10.1.0.1/30 fd00:1::1/64 10.9.0.1/24 "},
		{"links", `{{ range .Host.Links }}{{ .Name }}:{{ join .Peers "+" }} {{ end }}`, "ab:b lan:c+b "},
		{"position", `{{ index .Hosts.b.Position 0 }}`, "100"},
		{"every host", `{{ range $n, $h := .Hosts }}{{ $n }}={{ len $h.Links }} {{ end }}`, "a=2 b=2 c=1 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(tc.name, tc.text, f)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	f := testFacts()
	for _, tc := range []struct {
		text string
		want []string
	}{
		{`{{ .Host.Nmae }}`, []string{"svc.conf", "Nmae"}},
		{`{{ .Hosts.zz.Name }}`, []string{"svc.conf", `"zz"`}},
		{`{{ ip "zz" }}`, []string{"svc.conf", `no host "zz"`, "hosts: a, b, c"}},
		{`{{ ip "b" "xy" }}`, []string{"not on link xy", "its links: ab, lan"}},
		{`{{ ip "c" }}`, []string{"host c has no ip address"}},
		{`{{ mgmt "c" }}`, []string{"no management address"}},
		{`{{ node "c" }}`, []string{"host c has no node address"}},
		{`{{ node6 "zz" }}`, []string{`no host "zz"`}},
		{`{{ peers "zz" }}`, []string{"not on link zz"}},
		{`{{ ip "b" }`, []string{"svc.conf", "unexpected"}},
	} {
		_, err := Render("svc.conf", tc.text, f)
		if err == nil {
			t.Errorf("%s: no error", tc.text)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.text, err, w)
			}
		}
	}
}

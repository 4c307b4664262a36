package guest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

func TestRenderShape(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		q    netfabric.Impairment
		prev layout
		want string
	}{
		{"nothing to do", netfabric.Impairment{}, layoutNone, ""},
		{"back to default", netfabric.Impairment{}, layoutNetem, "tc qdisc del dev eth1 root"},
		{"delay", netfabric.Impairment{Delay: 20 * ms}, layoutNone,
			"tc qdisc replace dev eth1 root handle 1: netem limit 33334 delay 20ms"}, // BDP at 10 Gbit/s, doubled
		{"jitter keeps order", netfabric.Impairment{Delay: 20 * ms, Jitter: 5 * ms, Distribution: "normal"}, layoutNetem,
			"tc qdisc replace dev eth1 root handle 1: netem limit 66667 delay 20ms 5ms distribution normal rate 1000gbit"},
		{"everything", netfabric.Impairment{Delay: 10 * ms, Loss: 0.5, Duplicate: 1, Reorder: 25, Corrupt: 0.1, Limit: 5000}, layoutNone,
			"tc qdisc replace dev eth1 root handle 1: netem limit 5000 delay 10ms loss 0.5% duplicate 1% reorder 25% corrupt 0.1%"},
		{"gemodel", netfabric.Impairment{GE: netfabric.GilbertElliott{P: 1, R: 20, OneMinusH: 70, OneMinusK: 0.1}}, layoutNone,
			"tc qdisc replace dev eth1 root handle 1: netem limit 1000 loss gemodel 1% 20% 70% 0.1%"},
		{"rate", netfabric.Impairment{RateBits: 10e6}, layoutNone,
			"tc qdisc replace dev eth1 root handle 1: htb default 1" +
				" && tc class replace dev eth1 parent 1: classid 1:1 htb rate 10mbit ceil 10mbit" +
				" && { tc qdisc show dev eth1 parent 1:1 | grep -q pfifo || tc qdisc del dev eth1 parent 1:1 2>/dev/null; true; }" +
				" && tc qdisc replace dev eth1 parent 1:1 handle 10: pfifo limit 1000"},
		{"rate and delay from netem root", netfabric.Impairment{RateBits: 1e9, Delay: 100 * ms}, layoutNetem,
			"tc qdisc del dev eth1 root" +
				" && tc qdisc replace dev eth1 root handle 1: htb default 1" +
				" && tc class replace dev eth1 parent 1: classid 1:1 htb rate 1gbit ceil 1gbit" +
				" && { tc qdisc show dev eth1 parent 1:1 | grep -q netem || tc qdisc del dev eth1 parent 1:1 2>/dev/null; true; }" +
				" && tc qdisc replace dev eth1 parent 1:1 handle 10: netem limit 16667 delay 100ms"},
	} {
		if got := renderShape("eth1", tc.q, tc.prev); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestRenderFilters(t *testing.T) {
	if got, want := renderPartition("eth1", []string{"52:54:00:00:00:01"}),
		"tc filter del dev eth1 ingress prio 49102 2>/dev/null; true && tc filter add dev eth1 ingress prio 49102 protocol all u32 match ether src 52:54:00:00:00:01 action drop"; got != want {
		t.Errorf("partition:\n got %q\nwant %q", got, want)
	}
	if got := renderDown("eth1", true); !strings.Contains(got, "ingress prio 49101 protocol all u32 match u32 0 0 action drop") ||
		!strings.Contains(got, "egress prio 49101 protocol all u32 match u32 0 0 action drop") {
		t.Errorf("down: %q", got)
	}
	if got := renderDown("eth1", false); strings.Contains(got, "filter add") {
		t.Errorf("up adds filters: %q", got)
	}
}

// fakeHost answers like a Debian guest's tc and records every command.
type fakeHost struct {
	cmds     []string
	root     string // `tc -j qdisc show dev X root` answer
	ingress  string
	netemErr error
}

func (f *fakeHost) Run(_ context.Context, host, cmd string) (string, error) {
	f.cmds = append(f.cmds, host+": "+cmd)
	switch {
	case cmd == probeNetem:
		return "", f.netemErr
	case strings.HasSuffix(cmd, " root") && strings.HasPrefix(cmd, "tc -j qdisc show"):
		return f.root, nil
	case strings.HasSuffix(cmd, " ingress") && strings.HasPrefix(cmd, "tc -j qdisc show"):
		return f.ingress, nil
	case strings.HasPrefix(cmd, "cat /sys/class/net/"):
		return "10\n1000\n[]\n", nil
	}
	return "", nil
}

func (f *fakeHost) changes() []string {
	var out []string
	for _, c := range f.cmds {
		if !strings.Contains(c, "tc -j") && !strings.Contains(c, probeNetem) && !strings.Contains(c, "cat /sys") {
			out = append(out, c)
		}
	}
	return out
}

func testShaper(t *testing.T, f *fakeHost) *Shaper {
	t.Helper()
	links := netfabric.Links{{Name: "ab", Endpoints: []netfabric.Endpoint{
		{Host: "a", Iface: "eth1", MAC: "52:54:00:00:00:0a"},
		{Host: "b", Iface: "eth2", MAC: "52:54:00:00:00:0b"},
	}}}
	s, err := New(links, f, "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const defaultRoot = `[{"kind":"fq_codel","handle":"0:","root":true}]`

func TestSetRunsTcOnTheSender(t *testing.T) {
	f := &fakeHost{root: defaultRoot, ingress: "[]"}
	s := testShaper(t, f)
	ctx := context.Background()
	if err := s.Set(ctx, "ab", "a", netfabric.Impairment{Delay: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a: tc qdisc replace dev eth1 root handle 1: netem limit 33334 delay 20ms"}
	if got := f.changes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("commands:\n got %q\nwant %q", got, want)
	}
	f.cmds = nil
	if err := s.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.changes(); fmt.Sprint(got) != fmt.Sprint([]string{"a: tc qdisc del dev eth1 root"}) {
		t.Fatalf("teardown:\n got %q", got)
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    *fakeHost
		call func(*Shaper) error
		kind error
	}{
		{"custom root qdisc", &fakeHost{root: `[{"kind":"htb","handle":"1:","root":true}]`},
			func(s *Shaper) error { return s.Set(ctx, "ab", "a", netfabric.Impairment{RateBits: 1e6}) }, netfabric.ErrUnsupported},
		{"no netem", &fakeHost{root: defaultRoot, netemErr: errors.New("exit status 2")},
			func(s *Shaper) error { return s.Set(ctx, "ab", "", netfabric.Impairment{Loss: 5}) }, netfabric.ErrUnsupported},
		{"foreign ingress", &fakeHost{root: defaultRoot, ingress: `[{"kind":"ingress","handle":"ffff:"}]`},
			func(s *Shaper) error { return s.SetUp(ctx, "ab", false) }, netfabric.ErrUnsupported},
		{"bad quality", &fakeHost{root: defaultRoot},
			func(s *Shaper) error { return s.Set(ctx, "ab", "a", netfabric.Impairment{Loss: 101}) }, nil},
		{"unknown link", &fakeHost{root: defaultRoot},
			func(s *Shaper) error { return s.Set(ctx, "zz", "", netfabric.Impairment{}) }, netfabric.ErrUnknownLink},
		{"unknown host", &fakeHost{root: defaultRoot},
			func(s *Shaper) error { return s.Partition(ctx, [][]string{{"a"}, {"x"}}) }, netfabric.ErrUnknownHost},
	} {
		s := testShaper(t, tc.f)
		err := tc.call(s)
		if err == nil || (tc.kind != nil && !errors.Is(err, tc.kind)) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.kind)
			continue
		}
		if ch := tc.f.changes(); len(ch) != 0 {
			t.Errorf("%s: refused, yet ran %q", tc.name, ch)
		}
	}
}

func TestPartitionFilters(t *testing.T) {
	f := &fakeHost{root: defaultRoot, ingress: "[]"}
	s := testShaper(t, f)
	ctx := context.Background()
	if err := s.Partition(ctx, [][]string{{"a"}, {"b"}}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.changes(), "\n")
	for _, want := range []string{
		"a: tc qdisc add dev eth1 clsact",
		"a: tc filter del dev eth1 ingress prio 49102 2>/dev/null; true && tc filter add dev eth1 ingress prio 49102 protocol all u32 match ether src 52:54:00:00:00:0b action drop",
		"b: tc filter del dev eth2 ingress prio 49102 2>/dev/null; true && tc filter add dev eth2 ingress prio 49102 protocol all u32 match ether src 52:54:00:00:00:0a action drop",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("partition commands lack %q:\n%s", want, got)
		}
	}
	f.cmds = nil
	if err := s.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.changes(), "\n"); strings.Contains(got, "filter add") || !strings.Contains(got, "filter del dev eth2 ingress prio 49102") {
		t.Errorf("heal:\n%s", got)
	}
	f.cmds = nil
	if err := s.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.changes(), "\n"); !strings.Contains(got, "a: tc qdisc del dev eth1 clsact") || !strings.Contains(got, "b: tc qdisc del dev eth2 clsact") {
		t.Errorf("teardown does not remove clsact:\n%s", got)
	}
}

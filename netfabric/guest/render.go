package guest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/forgelab/forgelab/netfabric"
)

// Filter priorities forgelab uses inside hosts: high numbers, clear of
// whatever the host's own configuration uses.
const (
	prioDown      = 49101
	prioPartition = 49102
)

// layout is the shape of the qdisc tree on an interface, so a change of
// shape (htb on or off) is done as delete-and-add, the only way tc allows
// changing a qdisc's kind.
type layout int

const (
	layoutNone  layout = iota // the host's default qdisc
	layoutNetem               // root netem 1:
	layoutHTB                 // root htb 1: -> class 1:1 -> leaf 10: (netem or pfifo)
)

func layoutOf(q netfabric.Impairment) layout {
	switch {
	case q.RateBits > 0:
		return layoutHTB
	case needsNetem(q):
		return layoutNetem
	}
	return layoutNone
}

func needsNetem(q netfabric.Impairment) bool {
	return q.Delay > 0 || q.Jitter > 0 || q.Loss > 0 || !q.GE.IsZero() ||
		q.Duplicate > 0 || q.Reorder > 0 || q.Corrupt > 0
}

// renderShape returns the shell command that makes dev's egress (what
// the host sends) follow q, given the layout forgelab last left there.
func renderShape(dev string, q netfabric.Impairment, prev layout) string {
	want := layoutOf(q)
	var cmds []string
	if prev != want && prev != layoutNone {
		cmds = append(cmds, fmt.Sprintf("tc qdisc del dev %s root", dev))
	}
	limit := strconv.Itoa(q.QueueLimit(10e9))
	switch want {
	case layoutNone:
		if prev != layoutNone {
			return cmds[0]
		}
		return ""
	case layoutNetem:
		verb := "replace"
		cmds = append(cmds, fmt.Sprintf("tc qdisc %s dev %s root handle 1: %s", verb, dev, netemArgs(q, limit)))
	case layoutHTB:
		rate := netfabric.FormatRate(q.RateBits)
		cmds = append(cmds,
			fmt.Sprintf("tc qdisc replace dev %s root handle 1: htb default 1", dev),
			fmt.Sprintf("tc class replace dev %s parent 1: classid 1:1 htb rate %s ceil %s", dev, rate, rate))
		if needsNetem(q) {
			// A leaf of another kind must go first: replace cannot change kind.
			cmds = append(cmds,
				fmt.Sprintf("{ tc qdisc show dev %s parent 1:1 | grep -q netem || tc qdisc del dev %s parent 1:1 2>/dev/null; true; }", dev, dev),
				fmt.Sprintf("tc qdisc replace dev %s parent 1:1 handle 10: %s", dev, netemArgs(q, limit)))
		} else {
			cmds = append(cmds,
				fmt.Sprintf("{ tc qdisc show dev %s parent 1:1 | grep -q pfifo || tc qdisc del dev %s parent 1:1 2>/dev/null; true; }", dev, dev),
				fmt.Sprintf("tc qdisc replace dev %s parent 1:1 handle 10: pfifo limit %s", dev, limit))
		}
	}
	return strings.Join(cmds, " && ")
}

// netemArgs renders q as tc-netem arguments. Jitter comes with a huge
// netem rate: it changes nothing about timing but makes netem send
// packets in order, so jitter only reorders when Reorder asks for it.
func netemArgs(q netfabric.Impairment, limit string) string {
	a := []string{"netem", "limit", limit}
	if q.Delay > 0 || q.Jitter > 0 {
		a = append(a, "delay", netfabric.FormatDuration(q.Delay))
		if q.Jitter > 0 {
			a = append(a, netfabric.FormatDuration(q.Jitter))
			if q.Distribution != "" && q.Distribution != netfabric.DistUniform {
				a = append(a, "distribution", q.Distribution)
			}
		}
	}
	pct := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "%" }
	if q.Loss > 0 {
		a = append(a, "loss", pct(q.Loss))
	}
	if g := q.GE; !g.IsZero() {
		a = append(a, "loss", "gemodel", pct(g.P), pct(g.R), pct(g.OneMinusH), pct(g.OneMinusK))
	}
	if q.Duplicate > 0 {
		a = append(a, "duplicate", pct(q.Duplicate))
	}
	if q.Reorder > 0 {
		a = append(a, "reorder", pct(q.Reorder))
	}
	if q.Corrupt > 0 {
		a = append(a, "corrupt", pct(q.Corrupt))
	}
	if q.Jitter > 0 {
		a = append(a, "rate", "1000gbit")
	}
	return strings.Join(a, " ")
}

// renderDown drops (or stops dropping) everything through dev, both ways.
func renderDown(dev string, down bool) string {
	del := fmt.Sprintf("tc filter del dev %s ingress prio %d 2>/dev/null; tc filter del dev %s egress prio %d 2>/dev/null; true", dev, prioDown, dev, prioDown)
	if !down {
		return del
	}
	return del + fmt.Sprintf(" && tc filter add dev %s ingress prio %d protocol all u32 match u32 0 0 action drop"+
		" && tc filter add dev %s egress prio %d protocol all u32 match u32 0 0 action drop", dev, prioDown, dev, prioDown)
}

// renderPartition makes dev drop what arrives from the given MACs.
func renderPartition(dev string, macs []string) string {
	cmd := fmt.Sprintf("tc filter del dev %s ingress prio %d 2>/dev/null; true", dev, prioPartition)
	for _, m := range macs {
		cmd += fmt.Sprintf(" && tc filter add dev %s ingress prio %d protocol all u32 match ether src %s action drop", dev, prioPartition, m)
	}
	return cmd
}

// probeNetem checks for netem in a throwaway network namespace, so the
// host's interfaces are not touched. Exit 0: netem works.
const probeNetem = `ns=flnetem$$; ip netns add $ns || exit 2; ip -n $ns link set lo up; ` +
	`tc -n $ns qdisc add dev lo root netem delay 1ms; r=$?; ip netns del $ns; exit $r`

package mobility

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LineError is a problem on one line of a file: "FILE:LINE: msg".
type LineError struct {
	File string
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Trace is an ns-2 mobility trace as BonnMotion, CORE, SUMO (traceExporter)
// and ns-2's setdest write it:
//
//	$node_(6) set X_ 780.0
//	$node_(6) set Y_ 120.0
//	$node_(6) set Z_ 0.0
//	$ns_ at 1.00 "$node_(6) setdest 500.0 178.0 25.0"
//
// "setdest x y speed" starts a straight move at that time, from wherever the
// node is, at speed m/s; a later setdest cuts short a move still under way.
// z keeps its initial value. Speed 0 stops the node where it is. $god_
// lines (setdest's shortest-path hints) and comments are ignored.
type Trace struct {
	File  string
	nodes map[int]*traceNode
}

type traceNode struct {
	x, y, z *float64
	line    int // of the first line naming the node
	moves   []traceMove
}

type traceMove struct {
	at          time.Duration
	x, y, speed float64
	line        int
}

var (
	nodeRe    = regexp.MustCompile(`^\$node_\((\d+)\)$`)
	maxTraceT = float64(100 * 365 * 24 * time.Hour / time.Second) // keeps times inside time.Duration
)

// ParseNS2 reads a trace; file names it in errors, which come back joined,
// one *LineError per bad line.
func ParseNS2(file string, data []byte) (*Trace, error) {
	tr := &Trace{File: file, nodes: map[int]*traceNode{}}
	var errs []error
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = strings.TrimSpace(line[:c])
		}
		if line == "" || strings.Contains(line, "$god_") {
			continue
		}
		if err := tr.parseLine(line, i+1); err != nil {
			errs = append(errs, &LineError{File: file, Line: i + 1, Msg: err.Error()})
		}
	}
	return tr, errors.Join(errs...)
}

const ns2Forms = `(want "$node_(N) set X_ 1.0" or "$ns_ at 1.0 \"$node_(N) setdest X Y SPEED\"")`

func (tr *Trace) parseLine(line string, n int) error {
	f := strings.Fields(strings.ReplaceAll(line, `"`, " "))
	num := func(s, what string, nonNegative bool) (float64, error) {
		v, err := strconv.ParseFloat(s, 64)
		switch {
		case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
			return 0, fmt.Errorf("%s %q is not a number %s", what, s, ns2Forms)
		case nonNegative && v < 0:
			return 0, fmt.Errorf("%s %s is negative", what, s)
		}
		return v, nil
	}
	switch {
	case len(f) == 4 && f[1] == "set":
		node, err := tr.node(f[0], n)
		if err != nil {
			return err
		}
		v, err := num(f[3], f[2], false)
		if err != nil {
			return err
		}
		switch f[2] {
		case "X_":
			node.x = &v
		case "Y_":
			node.y = &v
		case "Z_":
			node.z = &v
		default:
			return fmt.Errorf("set %s: want X_, Y_ or Z_", f[2])
		}
		return nil
	case len(f) == 8 && f[0] == "$ns_" && f[1] == "at" && f[4] == "setdest":
		at, err := num(f[2], "time", true)
		if err != nil {
			return err
		}
		if at > maxTraceT {
			return fmt.Errorf("time %s is more than 100 years", f[2])
		}
		node, err := tr.node(f[3], n)
		if err != nil {
			return err
		}
		m := traceMove{at: time.Duration(math.Round(at * float64(time.Second))), line: n}
		if m.x, err = num(f[5], "x", false); err != nil {
			return err
		}
		if m.y, err = num(f[6], "y", false); err != nil {
			return err
		}
		if m.speed, err = num(f[7], "speed", true); err != nil {
			return err
		}
		node.moves = append(node.moves, m)
		return nil
	}
	return fmt.Errorf("not an ns-2 mobility line %s", ns2Forms)
}

func (tr *Trace) node(tok string, line int) (*traceNode, error) {
	m := nodeRe.FindStringSubmatch(tok)
	if m == nil {
		return nil, fmt.Errorf("%q is not a node like $node_(0) %s", tok, ns2Forms)
	}
	id, err := strconv.Atoi(m[1])
	if err != nil {
		return nil, fmt.Errorf("node number %s is too large", m[1])
	}
	nd := tr.nodes[id]
	if nd == nil {
		nd = &traceNode{line: line}
		tr.nodes[id] = nd
	}
	return nd, nil
}

// Nodes lists the node numbers of the trace in order.
func (tr *Trace) Nodes() []int {
	ids := make([]int, 0, len(tr.nodes))
	for id := range tr.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Model is the path of one node of the trace.
func (tr *Trace) Model(node int) (Model, error) {
	nd := tr.nodes[node]
	if nd == nil {
		return nil, fmt.Errorf("trace %s has no $node_(%d) (it has nodes %v)", tr.File, node, tr.Nodes())
	}
	if nd.x == nil || nd.y == nil {
		return nil, &LineError{File: tr.File, Line: nd.line, Msg: fmt.Sprintf("$node_(%d) has no start position (add \"$node_(%d) set X_ 0.0\" and \"set Y_ 0.0\" lines)", node, node)}
	}
	start := Vec{*nd.x, *nd.y, 0}
	if nd.z != nil {
		start[2] = *nd.z
	}
	moves := slices.Clone(nd.moves)
	slices.SortStableFunc(moves, func(a, b traceMove) int { return cmp.Compare(a.at, b.at) })
	p := &legs{start: start}
	for _, m := range moves {
		from := p.Position(m.at)
		to := Vec{m.x, m.y, from[2]}
		arrive := m.at
		if m.speed > 0 {
			arrive += time.Duration(Dist(from, to) / m.speed * float64(time.Second))
		} else {
			to = from // speed 0: stop here
		}
		p.legs = append(p.legs, leg{depart: m.at, arrive: arrive, from: from, to: to})
	}
	return p, nil
}

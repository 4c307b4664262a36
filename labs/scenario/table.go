package scenario

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/forgelab/forgelab/labs/mobility"
	"github.com/forgelab/forgelab/labs/quality"
	"github.com/forgelab/forgelab/labs/tomlfile"
	"github.com/forgelab/forgelab/labs/units"
)

// parser collects the problems of one file.
type parser struct {
	file  string
	lines tomlfile.KeyLines
	errs  Errors
}

func (p *parser) errorf(line int, format string, a ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, a...)})
}

// table is one TOML table read by hand, so keys match exactly and every
// problem gets the line of its key.
type table struct {
	p    *parser
	path string // position path: "event[2]", "scenario.event[2].begin"
	what string // message prefix: "event 3"
	m    map[string]any
}

func (t *table) line(key string) int {
	return t.p.lines.Find(tomlfile.JoinPath(t.path, key))
}

func (t *table) errorf(key, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if t.what != "" {
		msg = t.what + ": " + msg
	}
	t.p.errorf(t.line(key), "%s", msg)
}

func (t *table) has(key string) bool {
	_, ok := t.m[key]
	return ok
}

// onlyKeys reports every key not in allowed; why explains the choice.
func (t *table) onlyKeys(allowed []string, why string) {
	for _, k := range slices.Sorted(maps.Keys(t.m)) {
		if !slices.Contains(allowed, k) {
			t.errorf(k, "unknown key %q %s (valid keys: %s)", k, why, strings.Join(allowed, ", "))
		}
	}
}

func (t *table) str(key string) (string, bool) {
	v, ok := t.m[key]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		t.errorf(key, "%s must be a string in quotes, not %v", key, v)
	}
	return s, ok
}

func (t *table) integer(key string) (int, bool) {
	v, ok := t.m[key]
	if !ok {
		return 0, false
	}
	n, ok := v.(int64)
	if !ok {
		t.errorf(key, "%s must be a whole number, not %v", key, v)
	}
	return int(n), ok
}

// duration reads a time like "10s"; nil when absent or wrong.
func (t *table) duration(key string) *time.Duration {
	v, ok := t.m[key]
	if !ok {
		return nil
	}
	var d mobility.Duration
	if err := d.UnmarshalTOML(v); err != nil {
		t.errorf(key, "%s: %v", key, err)
		return nil
	}
	td := time.Duration(d)
	return &td
}

// unmarshal reads key with one of quality's value types.
func (t *table) unmarshal(key string, into interface{ UnmarshalTOML(any) error }) bool {
	v, ok := t.m[key]
	if !ok {
		return false
	}
	if err := into.UnmarshalTOML(v); err != nil {
		t.errorf(key, "%s %v", key, err)
		return false
	}
	return true
}

func (t *table) sub(key string) *table {
	v, ok := t.m[key]
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.errorf(key, "%s must be a table like { loss = \"1%%\" }, not %v", key, v)
		return nil
	}
	return &table{p: t.p, path: tomlfile.JoinPath(t.path, key), what: strings.TrimSpace(t.what + " " + key), m: m}
}

// tables reads an array of tables ([[event]]).
func (t *table) tables(key string) []*table {
	v, ok := t.m[key]
	if !ok {
		return nil
	}
	elems, ok := tomlfile.Tables(v)
	if !ok {
		t.errorf(key, "%s must be written as [[%s]] tables", key, key)
		return nil
	}
	out := make([]*table, len(elems))
	for i, m := range elems {
		path := fmt.Sprintf("%s[%d]", key, i)
		if t.path != "" {
			path = t.path + "." + path
		}
		out[i] = &table{p: t.p, path: path, what: fmt.Sprintf("event %d", i+1), m: m}
	}
	return out
}

// groups reads [["a"], ["b", "c"]].
func (t *table) groups(key string) ([][]string, bool) {
	v, ok := t.m[key]
	if !ok {
		return nil, false
	}
	bad := func() ([][]string, bool) {
		t.errorf(key, `%s must be a list of host lists like [["a"], ["b", "c"]]`, key)
		return nil, false
	}
	list, ok := v.([]any)
	if !ok {
		return bad()
	}
	var out [][]string
	for _, g := range list {
		hosts, ok := g.([]any)
		if !ok {
			return bad()
		}
		var names []string
		for _, h := range hosts {
			s, ok := h.(string)
			if !ok {
				return bad()
			}
			names = append(names, s)
		}
		out = append(out, names)
	}
	return out, true
}

// patch reads the quality keys of t.
func (t *table) patch() Patch {
	var p Patch
	var r quality.Rate
	if t.unmarshal("rate", &r) {
		n := int64(r)
		if n > 0 && n < 8000 {
			t.errorf("rate", "rate %d bit/s is below the minimum of 8kbit", n)
		}
		p.Rate = &n
	}
	delay := func(key string) *time.Duration {
		var d quality.Delay
		if !t.unmarshal(key, &d) {
			return nil
		}
		td := time.Duration(d)
		if td > time.Hour {
			t.errorf(key, "%s %v is more than an hour", key, td)
		}
		return &td
	}
	p.Delay = delay("delay")
	p.Jitter = delay("jitter")
	pct := func(key string) *float64 {
		var v quality.Percent
		if !t.unmarshal(key, &v) {
			return nil
		}
		f := float64(v)
		return &f
	}
	p.Loss, p.Duplicate, p.Reorder, p.Corrupt = pct("loss"), pct("duplicate"), pct("reorder"), pct("corrupt")
	if s, ok := t.str("loss_burst"); ok {
		b, err := units.ParseBurstLoss(s)
		switch {
		case err != nil:
			t.errorf("loss_burst", "%v", err)
		case p.Loss != nil:
			t.errorf("loss_burst", "loss and loss_burst are both set: random loss or bursty loss, not both (remove one)")
		default:
			p.LossBurst = &b
		}
	}
	if s, ok := t.str("distribution"); ok {
		switch s {
		case "uniform", "normal", "pareto", "paretonormal":
			p.Distribution = &s
		default:
			t.errorf("distribution", "distribution %q is not known (use uniform, normal, pareto or paretonormal)", s)
		}
	}
	if n, ok := t.integer("limit"); ok {
		if n < 0 {
			t.errorf("limit", "limit %d is negative (0 lets the fabric decide)", n)
		}
		p.Limit = &n
	}
	return p
}

// qualityKeys are the keys patch reads.
var qualityKeys = []string{"rate", "delay", "jitter", "distribution", "loss", "loss_burst", "duplicate", "reorder", "corrupt", "limit"}

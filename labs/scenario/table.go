package scenario

import (
	"fmt"
	"strings"
	"time"

	"github.com/forgelab/forgelab/labs/mobility"
	"github.com/forgelab/forgelab/labs/quality"
	"github.com/forgelab/forgelab/labs/tomlfile"
	"github.com/forgelab/forgelab/labs/units"
)

// table is a tomlfile.Table with the readers of scenario files.
type table struct{ *tomlfile.Table }

// parser collects the problems of one file.
type parser struct{ tomlfile.Problems }

// duration reads a time like "10s"; nil when absent or wrong.
func (t *table) duration(key string) *time.Duration {
	v, ok := t.M[key]
	if !ok {
		return nil
	}
	var d mobility.Duration
	if err := d.UnmarshalTOML(v); err != nil {
		t.Errorf(key, "%s: %v", key, err)
		return nil
	}
	td := time.Duration(d)
	return &td
}

// unmarshal reads key with one of quality's value types.
func (t *table) unmarshal(key string, into interface{ UnmarshalTOML(any) error }) bool {
	v, ok := t.M[key]
	if !ok {
		return false
	}
	if err := into.UnmarshalTOML(v); err != nil {
		t.Errorf(key, "%s %v", key, err)
		return false
	}
	return true
}

// sub reads key as a table whose messages name it: "event 3 begin: ...".
func (t *table) sub(key string) *table {
	st := t.Sub(key, `%[1]s must be a table like { loss = "1%%" }, not %[2]v`)
	if st == nil {
		return nil
	}
	st.What = strings.TrimSpace(t.What + " " + key)
	return &table{st}
}

// tables reads an array of tables ([[event]]).
func (t *table) tables(key string) []*table {
	var out []*table
	for i, et := range t.Tables(key, key) {
		et.What = fmt.Sprintf("event %d", i+1)
		out = append(out, &table{et})
	}
	return out
}

// groups reads [["a"], ["b", "c"]].
func (t *table) groups(key string) ([][]string, bool) {
	v, ok := t.M[key]
	if !ok {
		return nil, false
	}
	bad := func() ([][]string, bool) {
		t.Errorf(key, `%s must be a list of host lists like [["a"], ["b", "c"]]`, key)
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
			t.Errorf("rate", "rate %d bit/s is below the minimum of 8kbit", n)
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
			t.Errorf(key, "%s %v is more than an hour", key, td)
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
	if s, ok := t.Str("loss_burst"); ok {
		b, err := units.ParseBurstLoss(s)
		switch {
		case err != nil:
			t.Errorf("loss_burst", "%v", err)
		case p.Loss != nil:
			t.Errorf("loss_burst", "loss and loss_burst are both set: random loss or bursty loss, not both (remove one)")
		default:
			p.LossBurst = &b
		}
	}
	if s, ok := t.Str("distribution"); ok {
		switch s {
		case "uniform", "normal", "pareto", "paretonormal":
			p.Distribution = &s
		default:
			t.Errorf("distribution", "distribution %q is not known (use uniform, normal, pareto or paretonormal)", s)
		}
	}
	if n, ok := t.Int("limit"); ok {
		if n < 0 {
			t.Errorf("limit", "limit %d is negative (0 lets the fabric decide)", n)
		}
		p.Limit = &n
	}
	return p
}

// qualityKeys are the keys patch reads.
var qualityKeys = []string{"rate", "delay", "jitter", "distribution", "loss", "loss_burst", "duplicate", "reorder", "corrupt", "limit"}

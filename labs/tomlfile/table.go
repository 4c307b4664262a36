package tomlfile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Problems collects the problems of one file; Lines places them.
type Problems struct {
	File  string
	Lines KeyLines
	Errs  Errors
}

// Errorf records a problem at line (0: the file as a whole).
func (p *Problems) Errorf(line int, format string, a ...any) {
	p.Errs = append(p.Errs, &Error{File: p.File, Line: line, Msg: fmt.Sprintf(format, a...)})
}

// Sorted returns the problems in line order, those on one line in the
// order found.
func (p *Problems) Sorted() Errors {
	slices.SortStableFunc(p.Errs, func(a, b *Error) int { return a.Line - b.Line })
	return p.Errs
}

// Table is one TOML table read by hand, so keys match exactly (the toml
// library matches case-insensitively) and every problem gets the line of
// its key.
type Table struct {
	P    *Problems
	Path string // position path: "event[2]", "bench.mode[0]"
	What string // message prefix: "event 3"; none when empty
	M    map[string]any
}

// Line is the line of key ("": of the table itself).
func (t *Table) Line(key string) int {
	return t.P.Lines.Find(JoinPath(t.Path, key))
}

// Errorf records a problem at the line of key, prefixed with t.What.
func (t *Table) Errorf(key, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if t.What != "" {
		msg = t.What + ": " + msg
	}
	t.P.Errorf(t.Line(key), "%s", msg)
}

func (t *Table) Has(key string) bool {
	_, ok := t.M[key]
	return ok
}

// OnlyKeys reports every key not in allowed; why, when set, explains the
// choice ("in a ramp").
func (t *Table) OnlyKeys(allowed []string, why string) {
	if why != "" {
		why = " " + why
	}
	for _, k := range slices.Sorted(maps.Keys(t.M)) {
		if !slices.Contains(allowed, k) {
			t.Errorf(k, "unknown key %q%s (valid keys: %s)", k, why, strings.Join(allowed, ", "))
		}
	}
}

// Str reads a string; ok is false when key is absent or not a string
// (then reported).
func (t *Table) Str(key string) (string, bool) {
	v, ok := t.M[key]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		t.Errorf(key, "%s must be a string in quotes, not %v", key, v)
	}
	return s, ok
}

// Int reads a whole number, like Str.
func (t *Table) Int(key string) (int, bool) {
	v, ok := t.M[key]
	if !ok {
		return 0, false
	}
	n, ok := v.(int64)
	if !ok {
		t.Errorf(key, "%s must be a whole number, not %v", key, v)
	}
	return int(n), ok
}

// Strings reads a list of strings, like Str.
func (t *Table) Strings(key string) ([]string, bool) {
	v, ok := t.M[key]
	if !ok {
		return nil, false
	}
	list, ok := v.([]any)
	if !ok {
		t.Errorf(key, "%s must be a list of strings, e.g. [\"a\", \"b\"]", key)
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			t.Errorf(key, "%s must be a list of strings, not %v", key, x)
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// Sub reads key as a table with t's What; nil when absent or not a table.
// bad is the problem then, a format with %[1]s the key and %[2]v the value,
// so each file type shows its own example.
func (t *Table) Sub(key, bad string) *Table {
	v, ok := t.M[key]
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Errorf(key, bad, key, v)
		return nil
	}
	return &Table{P: t.P, Path: JoinPath(t.Path, key), What: t.What, M: m}
}

// Tables reads key as an array of tables, written [[name]] in the file;
// the elements have no What yet.
func (t *Table) Tables(key, name string) []*Table {
	v, ok := t.M[key]
	if !ok {
		return nil
	}
	elems, ok := Tables(v)
	if !ok {
		t.Errorf(key, "%s must be written as [[%s]] tables", key, name)
		return nil
	}
	out := make([]*Table, len(elems))
	for i, m := range elems {
		out[i] = &Table{P: t.P, Path: JoinPath(t.Path, fmt.Sprintf("%s[%d]", key, i)), M: m}
	}
	return out
}

package tomlfile

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestTable(t *testing.T) {
	src := `name = 3
count = "x"
list = ["a", 2]
extra = true
sub = 1
[t]
k = "v"
[[item]]
n = 1
[[item]]
n = "two"
`
	tests := []struct {
		name string
		read func(t *Table)
		want string // the problems, one a line; "" for none
	}{
		{"str ok", func(t *Table) { t.Sub("t", "").Str("k") }, ""},
		{"str absent", func(t *Table) { t.Str("nothing") }, ""},
		{"str wrong", func(t *Table) { t.Str("name") }, "f.toml:1: top: name must be a string in quotes, not 3"},
		{"int wrong", func(t *Table) { t.Int("count") }, "f.toml:2: top: count must be a whole number, not x"},
		{"strings wrong", func(t *Table) { t.Strings("list") }, "f.toml:3: top: list must be a list of strings, not 2"},
		{"strings not a list", func(t *Table) { t.Strings("name") }, `f.toml:1: top: name must be a list of strings, e.g. ["a", "b"]`},
		{"only keys", func(t *Table) { t.OnlyKeys([]string{"name", "count", "list", "sub", "t", "item"}, "") },
			"f.toml:4: top: unknown key \"extra\" (valid keys: name, count, list, sub, t, item)"},
		{"only keys why", func(t *Table) { t.Sub("t", "").OnlyKeys([]string{"x"}, "in [t]") },
			"f.toml:7: top: unknown key \"k\" in [t] (valid keys: x)"},
		{"sub wrong", func(t *Table) { t.Sub("sub", "%[1]s must be a table like %[1]s = {}, not %[2]v") },
			"f.toml:5: top: sub must be a table like sub = {}, not 1"},
		{"tables", func(t *Table) {
			for _, it := range t.Tables("item", "item") {
				it.Int("n")
			}
		}, `f.toml:11: n must be a whole number, not two`},
		{"tables wrong", func(t *Table) { t.Tables("name", "x.name") }, "f.toml:1: top: name must be written as [[x.name]] tables"},
		{"has", func(t *Table) {
			if !t.Has("sub") || t.Has("nothing") {
				t.Errorf("", "Has is wrong")
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var root map[string]any
			if _, err := toml.Decode(src, &root); err != nil {
				t.Fatal(err)
			}
			p := &Problems{File: "f.toml", Lines: Scan(src)}
			tt.read(&Table{P: p, What: "top", M: root})
			got := ""
			if len(p.Errs) > 0 {
				got = p.Sorted().Error()
			}
			if got != strings.TrimSpace(tt.want) {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

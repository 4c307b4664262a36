package runs

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Selector picks series the way PromQL does: a metric name and label
// equalities, e.g. forgelab_link_loss_ratio{link="ab",from="a"} (quotes
// optional).
type Selector struct {
	Name   string
	Labels map[string]string
}

var (
	metricRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// ParseSelector reads name or name{k=v,k="v"}.
func ParseSelector(s string) (Selector, error) {
	bad := func(why string) (Selector, error) {
		return Selector{}, fmt.Errorf("series %q: %s (write it like forgelab_link_loss_ratio{link=ab,from=a})", s, why)
	}
	sel := Selector{Labels: map[string]string{}}
	name, rest, hasLabels := strings.Cut(strings.TrimSpace(s), "{")
	sel.Name = strings.TrimSpace(name)
	if !metricRE.MatchString(sel.Name) {
		return bad("no metric name")
	}
	if !hasLabels {
		return sel, nil
	}
	body, ok := strings.CutSuffix(strings.TrimSpace(rest), "}")
	if !ok {
		return bad("missing '}'")
	}
	for body = strings.TrimSpace(body); body != ""; {
		k, v, ok := strings.Cut(body, "=")
		k = strings.TrimSpace(k)
		if !ok || !labelRE.MatchString(k) {
			return bad(fmt.Sprintf("%q is not label=value", body))
		}
		v = strings.TrimSpace(v)
		var val string
		if strings.HasPrefix(v, `"`) {
			// A quoted value may hold commas and \" escapes.
			end := 1
			for end < len(v) && v[end] != '"' {
				if v[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(v) {
				return bad("unterminated quoted value of " + k)
			}
			u, err := strconv.Unquote(v[:end+1])
			if err != nil {
				return bad("bad quoted value of " + k)
			}
			val, v = u, strings.TrimSpace(v[end+1:])
			if v != "" && v[0] != ',' {
				return bad("expected ',' after the value of " + k)
			}
		} else {
			val, v, _ = strings.Cut(v, ",")
			val = strings.TrimSpace(val)
			v = "," + v
		}
		if _, dup := sel.Labels[k]; dup {
			return bad("label " + k + " given twice")
		}
		sel.Labels[k] = val
		body = strings.TrimSpace(strings.TrimPrefix(v, ","))
	}
	return sel, nil
}

// String writes the selector with sorted, quoted labels.
func (s Selector) String() string { return formatSeries(s.Name, s.Labels) }

func formatSeries(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

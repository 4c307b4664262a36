package scenario

// The mobility and quality sections of a lab file:
//
//	[[host]]
//	name = "a"
//	position = [0, 0, 0]
//	mobility = { model = "linear", to = [-400, 0, 0], start = "10s", duration = "60s" }
//	# or a [host.mobility] table after the [[host]]; keys per model in
//	# labs/mobility (Config)
//
//	[quality.radio]          # a named model; a link uses it with quality = "radio"
//	model = "ramp"           # range | ramp | mininet-wifi | log-distance | table
//	loss_range = 300         # keys per model in labs/quality (Config)
//	max_range = 400
//
// They are read here, with file:line errors, so that labs only has to
// accept the keys mobility (in [[host]]) and quality (at the top level) and
// hand the file to ParseModels.

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/forgelab/forgelab/labs/mobility"
	"github.com/forgelab/forgelab/labs/quality"
	"github.com/forgelab/forgelab/labs/tomlfile"
)

// LabModels is the mobility of each host and the named quality models of a
// lab file, validated on their own; Build checks what needs the lab.
type LabModels struct {
	File     string
	Mobility map[string]mobility.Config // by host name; hosts without mobility are absent
	Quality  map[string]quality.Config  // by model name

	p    *parser
	path map[string]string // "host a" / "quality radio" -> position path, for errors
}

// ParseModels reads the mobility of every [[host]] and every [quality.NAME]
// of a lab file.
func ParseModels(file string, data []byte) (*LabModels, error) {
	var root map[string]any
	if _, err := toml.Decode(string(data), &root); err != nil {
		return nil, tomlfile.SyntaxError(file, err)
	}
	p := &parser{tomlfile.Problems{File: file, Lines: tomlfile.Scan(string(data))}}
	lm := &LabModels{File: file, Mobility: map[string]mobility.Config{}, Quality: map[string]quality.Config{}, p: p, path: map[string]string{}}
	t := &table{&tomlfile.Table{P: &p.Problems, M: root}}
	if _, ok := root["host"]; ok {
		for i, ht := range t.tables("host") {
			name, _ := ht.M["name"].(string)
			ht.What = fmt.Sprintf("host %q", name)
			ht.Path = fmt.Sprintf("host[%d]", i)
			mt := ht.sub("mobility")
			if mt == nil || name == "" {
				continue // no mobility, or the lab's parser reports the missing name
			}
			mt.What = ht.What
			var c mobility.Config
			mt.decode(&c, "mobility.")
			lm.report(mt, "mobility.", c.Validate())
			lm.Mobility[name] = c
			lm.path["host "+name] = mt.Path
		}
	}
	if qt := t.sub("quality"); qt != nil {
		qt.Path = "quality"
		for _, name := range slices.Sorted(maps.Keys(qt.M)) {
			mt := qt.sub(name)
			if mt == nil {
				continue
			}
			mt.What = fmt.Sprintf("quality %q", name)
			var c quality.Config
			mt.decode(&c, "")
			lm.report(mt, "", c.Validate())
			lm.Quality[name] = c
			lm.path["quality "+name] = mt.Path
		}
	}
	if len(p.Errs) > 0 {
		return nil, p.Sorted()
	}
	return lm, nil
}

// Build makes the models. seed is the lab seed, position gives a host's
// declared position, readFile reads an ns-2 trace relative to the lab file.
func (lm *LabModels) Build(seed int64, position func(host string) mobility.Vec, readFile func(string) ([]byte, error)) (map[string]mobility.Model, map[string]quality.Model, error) {
	lm.p.Errs = nil
	mob := map[string]mobility.Model{}
	for _, host := range slices.Sorted(maps.Keys(lm.Mobility)) {
		m, err := mobility.New(lm.Mobility[host], mobility.Env{Seed: seed, Host: host, Position: position(host), ReadFile: readFile})
		t := &table{&tomlfile.Table{P: &lm.p.Problems, Path: lm.path["host "+host], What: fmt.Sprintf("host %q", host)}}
		lm.report(t, "mobility.", err)
		mob[host] = m
	}
	qual := map[string]quality.Model{}
	for _, name := range slices.Sorted(maps.Keys(lm.Quality)) {
		m, err := quality.New(lm.Quality[name])
		t := &table{&tomlfile.Table{P: &lm.p.Problems, Path: lm.path["quality "+name], What: fmt.Sprintf("quality %q", name)}}
		lm.report(t, "", err)
		qual[name] = m
	}
	if len(lm.p.Errs) > 0 {
		return nil, nil, lm.p.Sorted()
	}
	return mob, qual, nil
}

// report files err's problems at the lines of the keys they name.
func (lm *LabModels) report(t *table, prefix string, err error) {
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var mf *mobility.FieldError
		var qf *quality.FieldError
		var le *mobility.LineError
		switch {
		case errors.As(e, &le): // a line of an ns-2 trace: its own file and line
			lm.p.Errs = append(lm.p.Errs, &Error{File: le.File, Line: le.Line, Msg: t.What + ": " + le.Msg})
		case errors.As(e, &mf):
			t.Errorf(topKey(mf.Field), "%s%s: %s", prefix, mf.Field, mf.Msg)
		case errors.As(e, &qf):
			t.Errorf(topKey(qf.Field), "%s%s: %s", prefix, qf.Field, qf.Msg)
		default:
			t.Errorf("", "%s%v", prefix, e)
		}
	}
}

// topKey: "waypoints[2].at" -> "waypoints".
func topKey(field string) string {
	if i := strings.IndexAny(field, "[."); i >= 0 {
		return field[:i]
	}
	return field
}

// decode reads t into the struct into points to. Keys must match a toml
// tag exactly (the toml library matches case-insensitively), and each key
// is decoded on its own by the toml library, so a bad value is reported at
// its own line and every bad key is reported.
func (t *table) decode(into any, prefix string) {
	rt := reflect.TypeOf(into).Elem()
	var keys []string
	for i := range rt.NumField() {
		if tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("toml"), ","); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(t.M)) {
		if !slices.Contains(keys, k) {
			t.Errorf(k, "unknown key %q (valid keys: %s)", prefix+k, strings.Join(keys, ", "))
			continue
		}
		var b strings.Builder
		if err := toml.NewEncoder(&b).Encode(map[string]any{k: t.M[k]}); err != nil {
			t.Errorf(k, "%s%s: %v", prefix, k, err)
			continue
		}
		if _, err := toml.Decode(b.String(), into); err != nil {
			t.Errorf(k, "%s%s: %s", prefix, k, decodeMessage(err))
		}
	}
}

// decodeMessage drops the toml library's position (it is of the one-key
// document decoded, not of the file).
func decodeMessage(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe.Message
	}
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "): "); ok && strings.HasPrefix(msg, "toml:") {
		return after
	}
	return strings.TrimPrefix(msg, "toml: ")
}

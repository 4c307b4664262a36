package scenario

// A scenario, standalone (forgelab run LAB scenario.toml) or as the
// [scenario] section of a lab file ([[scenario.event]]):
//
//	duration = "90s"             # required: the run ends here; no event may be later
//
//	[[event]]                    # one of three timings:
//	at = "30s"                   #   once
//	# every = "10s", from = "5s", until = "60s", count = 3
//	#                            #   repeatedly from from (default 0) until until
//	#                            #   (default the end) or count times
//	# from = "10s", to = "20s"   #   a window: the action at from, its undo at to
//	#                            #   (down/up, set/reset, partition/heal, stop/start,
//	#                            #   pause/resume, kill/start, workload start/stop)
//	do = "link.set"              # what; the keys each kind reads:
//	link = "ab"                  #   link.set: link, sender, rate, delay, jitter,
//	loss = "5%"                  #     distribution, loss, loss_burst, duplicate, reorder, corrupt,
//	                             #     limit (the fields given change, the rest stay)
//	                             #   link.reset, link.down, link.up: link
//	                             #   partition: groups = [["a"], ["b", "c"]]; heal
//	                             #   host.stop, host.start, host.kill, host.pause,
//	                             #     host.resume, host.reboot: host
//	                             #   nic.down, nic.up: host, link
//	                             #   workload.start, workload.stop: workload
//	                             #   exec: host, command; marker: label
//	                             #   link.flap (window only): link, period (down for
//	                             #     the first half of each period)
//	                             #   link.ramp (window only): link, sender, step,
//	                             #     begin = { loss = "0%" }, end = { loss = "50%" }
//
// Times count from the start of the run, written like Go durations ("90s",
// "1m30s", "250ms"). Keys are case-sensitive and unknown keys are errors.

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/forgelab/forgelab/labs/tomlfile"
)

// Timeline is a scenario expanded: every action, sorted by time; actions
// due at the same time keep the order of their events in the file.
type Timeline struct {
	File     string
	Duration time.Duration
	Actions  []Action
}

// Lab is what a scenario is checked against: the names it may use.
type Lab struct {
	Hosts     []string
	Links     []LabLink
	Workloads []string
}

// LabLink is a link of the lab and the hosts on it.
type LabLink struct {
	Name      string
	Endpoints []string
}

// Parse reads a scenario file; file names it in messages. lab, when not
// nil, is what the names in the events must exist in. Problems come back as
// Errors, each naming the file, the line and the fix.
func Parse(file string, data []byte, lab *Lab) (*Timeline, error) {
	return parse(file, data, lab, false)
}

// ParseSection reads the [scenario] section of a lab file; it returns nil,
// nil when the file has none. Other sections are left to the lab's parser.
func ParseSection(file string, data []byte, lab *Lab) (*Timeline, error) {
	return parse(file, data, lab, true)
}

func parse(file string, data []byte, lab *Lab, section bool) (*Timeline, error) {
	var root map[string]any
	if _, err := toml.Decode(string(data), &root); err != nil {
		return nil, tomlfile.SyntaxError(file, err)
	}
	p := &parser{tomlfile.Problems{File: file, Lines: tomlfile.Scan(string(data))}}
	t := &table{&tomlfile.Table{P: &p.Problems, M: root}}
	if section {
		if !t.Has("scenario") {
			return nil, nil
		}
		if t = t.sub("scenario"); t == nil {
			return nil, p.Errs
		}
		t.Path, t.What = "scenario", "scenario"
	} else {
		t.OnlyKeys([]string{"duration", "event"}, "in a scenario file")
	}
	tl := &Timeline{File: file}
	if d := t.duration("duration"); d == nil {
		if !t.Has("duration") {
			t.Errorf("", `duration is missing (add duration = "90s", when the run ends)`)
		}
	} else if *d == 0 {
		t.Errorf("duration", "duration must be more than 0")
	} else {
		tl.Duration = *d
	}
	if section {
		t.OnlyKeys([]string{"duration", "event"}, "in [scenario]")
	}
	for i, et := range t.tables("event") {
		if e := p.event(et, i); e != nil && tl.Duration > 0 {
			tl.Actions = append(tl.Actions, e.expand(tl.Duration)...)
			if lab != nil {
				e.checkLab(lab)
			}
		}
	}
	if len(p.Errs) > 0 {
		return nil, p.Sorted()
	}
	slices.SortStableFunc(tl.Actions, func(a, b Action) int { return cmp.Compare(a.At, b.At) })
	return tl, nil
}

// event is one [[event]] as read, before expansion.
type event struct {
	t     *table
	index int
	do    Kind

	at, every, from, to, until *time.Duration
	period, step               *time.Duration
	count                      *int

	proto      Action // the action with everything but the time
	begin, end Patch  // link.ramp
}

// timingKeys are the keys every kind may use.
var timingKeys = []string{"at", "every", "from", "to", "until", "count"}

// kindKeys lists the keys each kind reads besides do and the timing.
var kindKeys = map[Kind][]string{
	LinkSet:    append([]string{"link", "sender"}, qualityKeys...),
	LinkReset:  {"link"},
	LinkDown:   {"link"},
	LinkUp:     {"link"},
	Partition:  {"groups"},
	Heal:       {},
	HostStop:   {"host"},
	HostStart:  {"host"},
	HostKill:   {"host"},
	HostPause:  {"host"},
	HostResume: {"host"},
	HostReboot: {"host"},
	NICDown:    {"host", "link"},
	NICUp:      {"host", "link"},
	WorkStart:  {"workload"},
	WorkStop:   {"workload"},
	Exec:       {"host", "command"},
	Marker:     {"label"},
	LinkFlap:   {"link", "period"},
	LinkRamp:   {"link", "sender", "step", "begin", "end"},
}

// undo is what ends a from/to window of each kind that has an opposite.
var undo = map[Kind]Kind{
	LinkSet: LinkReset, LinkDown: LinkUp, LinkUp: LinkDown, Partition: Heal,
	HostStop: HostStart, HostKill: HostStart, HostPause: HostResume,
	NICDown: NICUp, NICUp: NICDown, WorkStart: WorkStop,
}

// Kinds lists every kind, in the order of the docs.
func Kinds() []Kind {
	return []Kind{LinkSet, LinkReset, LinkDown, LinkUp, LinkFlap, LinkRamp, Partition, Heal,
		HostStop, HostStart, HostKill, HostPause, HostResume, HostReboot, NICDown, NICUp,
		WorkStart, WorkStop, Exec, Marker}
}

func kindList() string {
	var s []string
	for _, k := range Kinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

func (p *parser) event(t *table, i int) *event {
	e := &event{t: t, index: i}
	e.proto = Action{File: p.File, Line: t.Line(""), Event: i}
	do, ok := t.Str("do")
	if !ok {
		if !t.Has("do") {
			t.Errorf("", `do is missing (add do = "marker", one of %s)`, kindList())
		}
		return nil
	}
	e.do = Kind(do)
	keys, known := kindKeys[e.do]
	if !known {
		t.Errorf("do", "do = %q is not known (use one of %s)", do, kindList())
		return nil
	}
	e.proto.Kind = e.do
	before := len(p.Errs)
	t.OnlyKeys(append(append([]string{"do"}, timingKeys...), keys...), fmt.Sprintf("for do = %q", do))
	e.readTiming()
	a := &e.proto
	need := func(key, example string) string {
		s, ok := t.Str(key)
		if !ok && !t.Has(key) {
			t.Errorf("", "%s needs %s (add %s)", do, key, example)
		}
		return s
	}
	opt := func(key string) string { s, _ := t.Str(key); return s }
	switch e.do {
	case LinkSet:
		a.Link, a.Sender = need("link", `link = "ab"`), opt("sender")
		a.Patch = t.patch()
		if a.Patch.IsZero() && !hasAny(t, qualityKeys) {
			t.Errorf("", `link.set changes nothing (add a quality like loss = "5%%" or delay = "20ms")`)
		}
	case LinkReset, LinkDown, LinkUp:
		a.Link = need("link", `link = "ab"`)
	case LinkFlap:
		a.Link = need("link", `link = "ab"`)
		if e.period = t.duration("period"); e.period == nil && !t.Has("period") {
			t.Errorf("", `link.flap needs period (add period = "2s": down for the first half, up for the second)`)
		} else if e.period != nil && *e.period < 2*time.Millisecond {
			t.Errorf("period", "period %v is below 2ms", *e.period)
		}
	case LinkRamp:
		a.Link, a.Sender = need("link", `link = "ab"`), opt("sender")
		e.readRamp()
	case Partition:
		if g, ok := t.groups("groups"); ok {
			a.Groups = g
			if len(g) < 2 {
				t.Errorf("groups", "a partition needs at least 2 groups, not %d (write groups = [[\"a\"], [\"b\", \"c\"]])", len(g))
			}
		} else if !t.Has("groups") {
			t.Errorf("", `partition needs groups (add groups = [["a"], ["b", "c"]])`)
		}
	case HostStop, HostStart, HostKill, HostPause, HostResume, HostReboot:
		a.Host = need("host", `host = "a"`)
	case NICDown, NICUp:
		a.Host, a.Link = need("host", `host = "a"`), need("link", `link = "ab"`)
	case WorkStart, WorkStop:
		a.Workload = need("workload", `workload = "alice"`)
	case Exec:
		a.Host, a.Command = need("host", `host = "a"`), need("command", `command = "ip route"`)
		if t.Has("command") && strings.TrimSpace(a.Command) == "" {
			t.Errorf("command", "command is empty")
		}
	case Marker:
		a.Label = need("label", `label = "handover starts"`)
	}
	if len(p.Errs) > before {
		return nil
	}
	return e
}

func hasAny(t *table, keys []string) bool {
	for _, k := range keys {
		if t.Has(k) {
			return true
		}
	}
	return false
}

// readTiming reads and checks at, every, from, to, until and count.
func (e *event) readTiming() {
	t := e.t
	e.at, e.every, e.from, e.to, e.until = t.duration("at"), t.duration("every"), t.duration("from"), t.duration("to"), t.duration("until")
	if n, ok := t.Int("count"); ok {
		e.count = &n
		if n < 1 {
			t.Errorf("count", "count must be at least 1, not %d", n)
		}
	}
	window := e.do == LinkFlap || e.do == LinkRamp
	switch {
	case t.Has("at"):
		for _, k := range []string{"every", "from", "to", "until", "count"} {
			if t.Has(k) {
				t.Errorf(k, "%s does not go with at (at is once; use every or a from/to window instead)", k)
			}
		}
		if window {
			t.Errorf("at", `%s needs a window, not at (write from = "10s" and to = "20s")`, e.do)
		}
	case t.Has("every"):
		if e.every != nil && *e.every < time.Millisecond {
			t.Errorf("every", "every %v is below 1ms", *e.every)
		}
		if e.from != nil && e.until != nil && *e.until < *e.from {
			t.Errorf("until", "until %v is before from %v", *e.until, *e.from)
		}
		if t.Has("to") {
			t.Errorf("to", "to does not go with every (end a repetition with until or count)")
		}
		if window {
			t.Errorf("every", `%s needs a window, not every (write from = "10s" and to = "20s")`, e.do)
		}
	case t.Has("from") || t.Has("to"):
		if !t.Has("from") {
			t.Errorf("to", `a window needs from as well as to (add from = "10s")`)
		}
		if !t.Has("to") {
			t.Errorf("from", `a window needs to as well as from (add to = "20s"; or use at for once)`)
		}
		for _, k := range []string{"until", "count"} {
			if t.Has(k) {
				t.Errorf(k, "%s does not go with a from/to window (it belongs with every)", k)
			}
		}
		if e.from != nil && e.to != nil && *e.to <= *e.from {
			t.Errorf("to", "to %v must be after from %v", *e.to, *e.from)
		}
		if _, ok := undo[e.do]; !ok && !window {
			t.Errorf("from", "%s has no opposite to end a window with (use at, or every with until)", e.do)
		}
	default:
		t.Errorf("", `needs a time (add at = "10s"; or every = "5s"; or from = "10s" and to = "20s")`)
	}
}

// readRamp reads a link.ramp's step, begin and end.
func (e *event) readRamp() {
	t := e.t
	if e.step = t.duration("step"); e.step == nil && !t.Has("step") {
		t.Errorf("", `link.ramp needs step (add step = "1s", how often the quality moves)`)
	} else if e.step != nil && *e.step < time.Millisecond {
		t.Errorf("step", "step %v is below 1ms", *e.step)
	}
	rampable := []string{"rate", "delay", "jitter", "loss", "duplicate", "reorder", "corrupt"}
	read := func(key string) (Patch, bool) {
		st := t.sub(key)
		if st == nil {
			if !t.Has(key) {
				t.Errorf("", `link.ramp needs %s (add %s = { loss = "0%%" })`, key, key)
			}
			return Patch{}, false
		}
		st.OnlyKeys(rampable, "in a ramp")
		return st.patch(), true
	}
	b, okb := read("begin")
	en, oke := read("end")
	if okb && oke && !sameFields(b, en) {
		t.Errorf("end", "begin and end must set the same fields (begin sets %s, end sets %s)", b, en)
	}
	e.begin, e.end = b, en
}

func sameFields(a, b Patch) bool {
	return (a.Rate == nil) == (b.Rate == nil) && (a.Delay == nil) == (b.Delay == nil) &&
		(a.Jitter == nil) == (b.Jitter == nil) && (a.Loss == nil) == (b.Loss == nil) &&
		(a.Duplicate == nil) == (b.Duplicate == nil) && (a.Reorder == nil) == (b.Reorder == nil) &&
		(a.Corrupt == nil) == (b.Corrupt == nil)
}

// expand turns e into actions and reports times past the end.
func (e *event) expand(end time.Duration) []Action {
	t := e.t
	late := func(key string, v *time.Duration) bool {
		if v != nil && *v > end {
			t.Errorf(key, "%s %v is past the scenario's end at %v (move it earlier, or lengthen duration)", key, *v, end)
			return true
		}
		return false
	}
	if late("at", e.at) || late("from", e.from) || late("to", e.to) || late("until", e.until) {
		return nil
	}
	act := func(at time.Duration, k Kind) Action {
		a := e.proto
		a.At, a.Kind = at, k
		return a
	}
	switch {
	case e.at != nil:
		return []Action{act(*e.at, e.do)}
	case e.every != nil:
		start, stop := time.Duration(0), end
		if e.from != nil {
			start = *e.from
		}
		if e.until != nil {
			stop = *e.until
		}
		if e.count != nil {
			if last := start + time.Duration(*e.count-1)**e.every; last > stop {
				if e.until != nil {
					t.Errorf("count", "count %d runs to %v, past until %v (lower count, or drop one of them)", *e.count, last, stop)
				} else {
					t.Errorf("count", "count %d runs to %v, past the scenario's end at %v (lower count, or lengthen duration)", *e.count, last, end)
				}
				return nil
			}
		}
		var out []Action
		for at := start; at <= stop && (e.count == nil || len(out) < *e.count); at += *e.every {
			out = append(out, act(at, e.do))
		}
		return out
	case e.from != nil && e.to != nil:
		switch e.do {
		case LinkFlap:
			return e.flap(act)
		case LinkRamp:
			return e.ramp(act)
		}
		return []Action{act(*e.from, e.do), act(*e.to, undo[e.do])}
	}
	return nil
}

// flap takes the link down at from, up half a period later, and so on;
// the link is up again at to.
func (e *event) flap(act func(time.Duration, Kind) Action) []Action {
	var out []Action
	half := *e.period / 2
	isDown := false
	for at := *e.from; at < *e.to; at += half {
		if isDown {
			out = append(out, act(at, LinkUp))
		} else {
			out = append(out, act(at, LinkDown))
		}
		isDown = !isDown
	}
	if isDown {
		out = append(out, act(*e.to, LinkUp))
	}
	return out
}

// ramp sets the quality every step from begin at from to end at to,
// interpolating each field linearly.
func (e *event) ramp(act func(time.Duration, Kind) Action) []Action {
	from, to := *e.from, *e.to
	var out []Action
	for at := from; ; at += *e.step {
		at = min(at, to)
		a := act(at, LinkSet)
		a.Patch = interpolate(e.begin, e.end, float64(at-from)/float64(to-from))
		out = append(out, a)
		if at == to {
			return out
		}
	}
}

func interpolate(a, b Patch, f float64) Patch {
	num := func(x, y *float64) *float64 {
		if x == nil {
			return nil
		}
		v := *x + (*y-*x)*f
		return &v
	}
	var p Patch
	if a.Rate != nil {
		r := int64(math.Round(float64(*a.Rate) + float64(*b.Rate-*a.Rate)*f))
		p.Rate = &r
	}
	dur := func(x, y *time.Duration) *time.Duration {
		if x == nil {
			return nil
		}
		d := *x + time.Duration(math.Round(float64(*y-*x)*f))
		return &d
	}
	p.Delay, p.Jitter = dur(a.Delay, b.Delay), dur(a.Jitter, b.Jitter)
	p.Loss, p.Duplicate, p.Reorder, p.Corrupt = num(a.Loss, b.Loss), num(a.Duplicate, b.Duplicate), num(a.Reorder, b.Reorder), num(a.Corrupt, b.Corrupt)
	return p
}

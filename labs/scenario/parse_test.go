package scenario

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

var testLab = &Lab{
	Hosts:     []string{"a", "b", "c"},
	Links:     []LabLink{{"ab", []string{"a", "b"}}, {"ac", []string{"a", "c"}}, {"bc", []string{"b", "c"}}},
	Workloads: []string{"alice", "bob"},
}

func render(tl *Timeline) string {
	var lines []string
	for _, a := range tl.Actions {
		lines = append(lines, a.String())
	}
	return strings.Join(lines, "\n")
}

func TestParseExpands(t *testing.T) {
	src := `
duration = "20s"

[[event]]
at = "0s"
do = "workload.start"
workload = "bob"

[[event]]
at = "0s"
do = "marker"
label = "go"

[[event]]
every = "5s"
from = "2s"
until = "12s"
do = "exec"
host = "a"
command = "ip route"

[[event]]
from = "4s"
to = "6s"
do = "link.flap"
link = "ab"
period = "1s"

[[event]]
from = "10s"
to = "13s"
do = "link.ramp"
link = "ac"
sender = "a"
step = "1s"
begin = { loss = "0%", delay = "10ms", rate = "10mbit" }
end = { loss = "30%", delay = "40ms", rate = "1mbit" }

[[event]]
from = "7s"
to = "12s"
do = "partition"
groups = [["a"], ["b", "c"]]

[[event]]
every = "4s"
count = 2
do = "nic.down"
host = "c"
link = "bc"

[[event]]
at = "20s"
do = "link.set"
link = "bc"
loss = 0
delay = "1.5ms"
`
	tl, err := Parse("s.toml", []byte(src), testLab)
	if err != nil {
		t.Fatal(err)
	}
	want := `0s workload.start bob
0s marker "go"
0s nic.down c bc
2s exec a "ip route"
4s link.down ab
4s nic.down c bc
4.5s link.up ab
5s link.down ab
5.5s link.up ab
7s exec a "ip route"
7s partition [[a] [b c]]
10s link.set ac from a rate 10mbit delay 10ms loss 0
11s link.set ac from a rate 7mbit delay 20ms loss 10%
12s exec a "ip route"
12s link.set ac from a rate 4mbit delay 30ms loss 20%
12s heal
13s link.set ac from a rate 1mbit delay 40ms loss 30%
20s link.set bc delay 1.5ms loss 0`
	if got := render(tl); got != want {
		t.Fatalf("timeline:\n%s\nwant:\n%s", got, want)
	}
	if tl.Duration.String() != "20s" || tl.Actions[0].Line != 4 || tl.Actions[0].File != "s.toml" {
		t.Errorf("duration %v, first action from %s:%d", tl.Duration, tl.Actions[0].File, tl.Actions[0].Line)
	}
}

func TestParseSection(t *testing.T) {
	src := `[lab]
name = "handover"

[[host]]
name = "a"

[scenario]
duration = "1m"

[[scenario.event]]
at = "30s"
do = "link.down"
link = "ab"

[[scenario.event]]
at = "2m"
do = "link.up"
link = "ab"
`
	_, err := ParseSection("lab.toml", []byte(src), testLab)
	if err == nil || err.Error() != `lab.toml:16: event 2: at 2m0s is past the scenario's end at 1m0s (move it earlier, or lengthen duration)` {
		t.Fatalf("error %v", err)
	}
	tl, err := ParseSection("lab.toml", []byte(strings.Replace(src, `"2m"`, `"45s"`, 1)), testLab)
	if err != nil {
		t.Fatal(err)
	}
	if got := render(tl); got != "30s link.down ab\n45s link.up ab" {
		t.Fatalf("timeline %s", got)
	}
	if tl, err := ParseSection("lab.toml", []byte("[lab]\nname = \"x\"\n"), testLab); tl != nil || err != nil {
		t.Fatalf("no section: %v, %v", tl, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"syntax", "duration = \n", "s.toml:1: not valid TOML"},
		{"no duration", "[[event]]\nat = \"1s\"\ndo = \"heal\"\n", `s.toml: duration is missing (add duration = "90s"`},
		{"bad duration", "duration = 90\n", `s.toml:1: duration: want a duration in quotes like "10s", not 90`},
		{"unknown top key", "duration = \"9s\"\nevents = 1\n", `s.toml:2: unknown key "events" in a scenario file (valid keys: duration, event)`},
		{"no do", "duration = \"9s\"\n[[event]]\nat = \"1s\"\n", `s.toml:2: event 1: do is missing (add do = "marker"`},
		{"unknown do", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.cut\"\n", `s.toml:4: event 1: do = "link.cut" is not known (use one of link.set`},
		{"foreign key", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"heal\"\nlink = \"ab\"\n", `s.toml:5: event 1: unknown key "link" for do = "heal" (valid keys: do, at, every`},
		{"no time", "duration = \"9s\"\n[[event]]\ndo = \"heal\"\n", `s.toml:2: event 1: needs a time (add at = "10s"`},
		{"past end", "duration = \"9s\"\n[[event]]\nat = \"10s\"\ndo = \"heal\"\n", `s.toml:3: event 1: at 10s is past the scenario's end at 9s`},
		{"negative", "duration = \"9s\"\n[[event]]\nat = \"-1s\"\ndo = \"heal\"\n", `s.toml:3: event 1: at: "-1s" is negative`},
		{"at and every", "duration = \"9s\"\n[[event]]\nat = \"1s\"\nevery = \"1s\"\ndo = \"heal\"\n", `s.toml:4: event 1: every does not go with at`},
		{"window order", "duration = \"9s\"\n[[event]]\nfrom = \"5s\"\nto = \"2s\"\ndo = \"link.down\"\nlink = \"ab\"\n", `s.toml:4: event 1: to 2s must be after from 5s`},
		{"window without undo", "duration = \"9s\"\n[[event]]\nfrom = \"1s\"\nto = \"2s\"\ndo = \"exec\"\nhost = \"a\"\ncommand = \"true\"\n", `s.toml:3: event 1: exec has no opposite to end a window with`},
		{"until before from", "duration = \"9s\"\n[[event]]\nevery = \"1s\"\nfrom = \"5s\"\nuntil = \"2s\"\ndo = \"heal\"\n", `s.toml:5: event 1: until 2s is before from 5s`},
		{"count past end", "duration = \"9s\"\n[[event]]\nevery = \"5s\"\ncount = 3\ndo = \"heal\"\n", `s.toml:4: event 1: count 3 runs to 10s, past the scenario's end at 9s`},
		{"unknown link", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.down\"\nlink = \"ax\"\n", `s.toml:5: event 1: link "ax" is not in the lab (links: ab, ac, bc)`},
		{"unknown host", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"host.pause\"\nhost = \"z\"\n", `s.toml:5: event 1: host "z" is not in the lab (hosts: a, b, c)`},
		{"nic not on link", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"nic.down\"\nhost = \"c\"\nlink = \"ab\"\n", `s.toml:6: event 1: host c has no NIC on link ab`},
		{"sender not on link", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.set\"\nlink = \"ab\"\nsender = \"c\"\nloss = 1\n", `s.toml:6: event 1: sender "c" is not on link ab`},
		{"unknown workload", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"workload.stop\"\nworkload = \"carol\"\n", `s.toml:5: event 1: workload "carol" is not in the lab (workloads: alice, bob)`},
		{"host in two groups", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"partition\"\ngroups = [[\"a\"], [\"a\", \"b\"]]\n", `s.toml:5: event 1: host "a" is in groups 1 and 2`},
		{"set nothing", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.set\"\nlink = \"ab\"\n", `s.toml:2: event 1: link.set changes nothing`},
		{"bad loss", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.set\"\nlink = \"ab\"\nloss = \"120%\"\n", `s.toml:6: event 1: loss "120%" is more than 100%`},
		{"bad loss_burst", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.set\"\nlink = \"ab\"\nloss_burst = \"0% 10%\"\n", `s.toml:6: event 1: burst loss "0% 10%": P (the chance to enter the bad state) must be more than 0`},
		{"loss and loss_burst", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.set\"\nlink = \"ab\"\nloss = 1\nloss_burst = \"1% 10%\"\n", `s.toml:7: event 1: loss and loss_burst are both set`},
		{"bad rate", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.set\"\nlink = \"ab\"\nrate = \"10\"\n", `s.toml:6: event 1: rate "10" has no unit`},
		{"ramp fields differ", "duration = \"9s\"\n[[event]]\nfrom = \"1s\"\nto = \"2s\"\ndo = \"link.ramp\"\nlink = \"ab\"\nstep = \"1s\"\nbegin = { loss = 1 }\nend = { delay = \"1ms\" }\n", `s.toml:9: event 1: begin and end must set the same fields`},
		{"flap needs window", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.flap\"\nlink = \"ab\"\nperiod = \"1s\"\n", `s.toml:3: event 1: link.flap needs a window, not at`},
		{"missing host", "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"exec\"\ncommand = \"true\"\n", `s.toml:2: event 1: exec needs host (add host = "a")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.toml", []byte(tt.src), testLab)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// Every problem of a file is reported at once, in line order.
func TestParseReportsEveryProblem(t *testing.T) {
	src := "duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.down\"\nlink = \"zz\"\n[[event]]\nat = \"20s\"\ndo = \"heal\"\n"
	_, err := Parse("s.toml", []byte(src), testLab)
	es, ok := err.(Errors)
	if !ok || len(es) != 2 || es[0].Line != 5 || es[1].Line != 7 {
		t.Fatalf("errors: %v", err)
	}
}

func TestExampleHandover(t *testing.T) {
	data, err := os.ReadFile("testdata/handover.toml")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := Parse("testdata/handover.toml", data, testLab)
	if err != nil {
		t.Fatal(err)
	}
	// 3 single events, 6 execs, 11 ramp steps, a reset and a stop.
	if len(tl.Actions) != 22 || tl.Duration != time.Minute {
		t.Fatalf("%d actions over %v:\n%s", len(tl.Actions), tl.Duration, render(tl))
	}
	for i := 1; i < len(tl.Actions); i++ {
		if tl.Actions[i].At < tl.Actions[i-1].At {
			t.Fatalf("not sorted at %d:\n%s", i, render(tl))
		}
	}
}

// A scenario sets bursty loss with the lab file's loss_burst syntax.
func TestParseLossBurst(t *testing.T) {
	tl, err := Parse("s.toml", []byte("duration = \"9s\"\n[[event]]\nat = \"1s\"\ndo = \"link.set\"\nlink = \"ab\"\nloss_burst = \"2% 25%\"\n"), testLab)
	if err != nil {
		t.Fatal(err)
	}
	q := tl.Actions[0].Patch.Apply(netfabric.Impairment{Loss: 5})
	if q.Loss != 0 || q.GE != (netfabric.GilbertElliott{P: 2, R: 25, OneMinusH: 100}) {
		t.Errorf("loss_burst \"2%% 25%%\" applied to loss 5%%: %+v", q)
	}
}

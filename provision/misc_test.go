package provision

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQdiscRestoreCommand(t *testing.T) {
	for _, tc := range []struct{ name, prior, want, err string }{
		{"noqueue", "qdisc noqueue 0: root refcnt 2 \n", "tc qdisc del dev 'eth0' root 2>/dev/null || true", ""},
		{"mq defaults", "qdisc mq 0: root \nqdisc fq_codel 0: parent :2 limit 10240p flows 1024\nqdisc fq_codel 0: parent :1 limit 10240p flows 1024\n",
			"tc qdisc del dev 'eth0' root 2>/dev/null || true", ""},
		{"default with ingress", "qdisc pfifo_fast 0: root refcnt 2 bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1\nqdisc ingress ffff: parent ffff:fff1 ----------------\n",
			"tc qdisc del dev 'eth0' root 2>/dev/null || true", ""},
		{"empty", "", "tc qdisc del dev 'eth0' root 2>/dev/null || true", ""},
		{"netem", "qdisc netem 8001: root refcnt 2 limit 1000 delay 50ms  10ms\n",
			"tc qdisc del dev 'eth0' root 2>/dev/null; tc qdisc add dev 'eth0' root handle '8001:' 'netem' 'limit' '1000' 'delay' '50ms' '10ms'", ""},
		{"htb with classes", "qdisc htb 1: root refcnt 2 r2q 10 default 0x10 direct_packets_stat 0\nqdisc netem 10: parent 1:10 limit 1000 delay 5ms\n", "", "could not restore"},
		{"pfifo", "qdisc pfifo 5: root refcnt 3 limit 50p\n", "", "could not restore"},
	} {
		got, err := qdiscRestoreCommand("eth0", tc.prior)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%s: got %q, %v\nwant %q", tc.name, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: got %q, %v; want error %q", tc.name, got, err, tc.err)
		}
	}
}

func TestJSONLines(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	j := &jsonLines{now: func() time.Time { return now }}
	// Written in odd pieces, as SSH delivers it.
	input := "starting\n{\"i\": 1, \"rate\": 1.5}\n  {\"i\":2}  \n[1,2]\n{broken\n" + `{"i": 3, "tags": {"a": "b"}}` + "\n{\"last\": true}"
	for i := 0; i < len(input); i += 7 {
		end := min(i+7, len(input))
		j.Write([]byte(input[i:end]))
	}
	j.flush()
	if len(j.metrics) != 4 {
		t.Fatalf("got %d metrics: %+v", len(j.metrics), j.metrics)
	}
	if j.metrics[0].Values["rate"] != 1.5 || j.metrics[2].Values["tags"].(map[string]any)["a"] != "b" || j.metrics[3].Values["last"] != true {
		t.Fatalf("metrics %+v", j.metrics)
	}
	if !j.metrics[0].Time.Equal(now) {
		t.Fatal("no timestamp")
	}
	// An over-long line is skipped, the next one still counts.
	j = &jsonLines{now: time.Now}
	j.Write([]byte("{\"x\":\"" + strings.Repeat("a", maxMetricLine) + "\"}\n{\"ok\":1}\n"))
	if len(j.metrics) != 1 || j.metrics[0].Values["ok"] != float64(1) {
		t.Fatalf("after long line: %+v", j.metrics)
	}
}

func TestWholeJSON(t *testing.T) {
	f := filepath.Join(t.TempDir(), "out")
	os.WriteFile(f, []byte("{\n  \"end\": {\"sum\": {\"bits_per_second\": 1e9}}\n}\n"), 0o644)
	m, ok := wholeJSON(f, time.Now())
	if !ok || m.Values["end"] == nil {
		t.Fatalf("iperf3 -J style output not read: %v %+v", ok, m)
	}
}

func TestWorkloadScript(t *testing.T) {
	w := Workload{Name: "alice", Command: "iperf3 -c 10.1.0.2 -t 60 -J", WorkDir: "/tmp", Env: map[string]string{"A": "it's"}, Timeout: 90 * time.Second, User: "lab"}
	got, err := w.script()
	if err != nil {
		t.Fatal(err)
	}
	want := "cd -- '/tmp' || exit 1\nexport A='it'\\''s'\necho forgelab-pgid=$$ >&2\nexec timeout -k 5 90.000 runuser -u 'lab' -- sh -c 'iperf3 -c 10.1.0.2 -t 60 -J'\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []Workload{{Name: "a b", Command: "x"}, {Name: "a", Command: ""}, {Name: "a", Command: "x", Env: map[string]string{"A-B": "x"}}} {
		if _, err := bad.script(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestEvaluateChecks(t *testing.T) {
	all := map[string]string{"user": "lab", "sudo": "ok", "systemd": "yes", "free_kib": "1048576"}
	for _, tool := range []string{"tc", "ip", "sha256sum", "xargs", "setsid", "timeout", "bash", "curl"} {
		all["have_"+tool] = "yes"
	}
	missing := func(kv map[string]string, h PhysicalHost) []string {
		var out []string
		for _, c := range evaluateChecks(kv, h) {
			if c.Required && !c.OK {
				out = append(out, c.Name)
			}
		}
		return out
	}
	if m := missing(all, PhysicalHost{RequireSystemd: true}); len(m) != 0 {
		t.Fatalf("complete host misses %v", m)
	}
	bad := map[string]string{}
	for k, v := range all {
		bad[k] = v
	}
	bad["sudo"], bad["have_tc"], bad["have_curl"], bad["systemd"], bad["free_kib"] = "denied", "no", "no", "no", "1024"
	got := missing(bad, PhysicalHost{})
	if strings.Join(got, ",") != "sudo,tc,free space on /" {
		t.Fatalf("missing %v", got)
	}
	got = missing(bad, PhysicalHost{RequireSystemd: true, MinFreeBytes: 1 << 20})
	if strings.Join(got, ",") != "sudo,tc,systemd" {
		t.Fatalf("missing %v", got)
	}
	e := &MissingError{Host: "edge1", Addr: "192.0.2.10:22"}
	for _, c := range evaluateChecks(bad, PhysicalHost{}) {
		if c.Required && !c.OK {
			e.Missing = append(e.Missing, c)
		}
	}
	msg := e.Error()
	for _, w := range []string{"edge1", "sudo -n true", "apt-get install iproute2", "1 MiB free, 100 MiB wanted"} {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q:\n%s", w, msg)
		}
	}
}

func TestJournalJSON(t *testing.T) {
	j := NewJournal("edge1")
	var saved []byte
	j.Save = func(j *Journal) error {
		var err error
		saved, err = json.Marshal(j)
		return err
	}
	j.record(Change{Kind: ChangeDir, Path: "/opt/app"})
	j.record(Change{Kind: ChangeFile, Path: "/opt/app/x", Backup: j.nextBackup("/var/lib/b", "/opt/app/x")})
	j.record(Change{Kind: ChangeQdisc, Dev: "eth0", Prior: "qdisc noqueue 0: root refcnt 2\n"})
	var back Journal
	if err := json.Unmarshal(saved, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Changes) != 3 || back.Changes[1].Backup != "/var/lib/b/000001-x" || back.NextBackup != 1 || !back.owns("/opt/app/x") {
		t.Fatalf("round trip: %s", saved)
	}
}

// Commands in errors and logs show no exported value: quoted once, twice
// (inside sh -c '...'), or holding the quote itself.
func TestRedact(t *testing.T) {
	w := Workload{Name: "w", Command: "run", Env: map[string]string{"TOKEN": "s3cret it's", "PLAIN": "s3cret2"}}
	script, err := w.script()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, cmd string }{
		{"script", script},
		{"inside sh -c", "sh -c " + ShellQuote(script)},
		{"inside sudo sh -c", asRoot(&Client{Target: Target{User: "lab"}}, "sh -c "+ShellQuote(script))},
		{"unquoted", "export TOKEN=s3cret; run"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Redact(tc.cmd)
			if strings.Contains(got, "s3cret") || !strings.Contains(got, "export TOKEN=<redacted>") {
				t.Errorf("Redact(%q) = %q", tc.cmd, got)
			}
			e := &ExitError{Cmd: tc.cmd, Code: 1, Stderr: "boom"}
			if strings.Contains(e.Error(), "s3cret") {
				t.Errorf("exit error %q", e.Error())
			}
		})
	}
	if got := Redact("systemctl restart 'forgelab-web.service'"); got != "systemctl restart 'forgelab-web.service'" {
		t.Errorf("a command without exports changed: %q", got)
	}
}

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forgelab/forgelab/examples/handover/phases"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// The handover demo for real (issue 10): both variants of
// examples/handover-*.toml, one after the other on 3 VMs each, play
// examples/handover.toml (60 s): ab degrades from 20 s and is out of
// range from 30 s, while ca and bc stay clean.
//
//   - babeld: Bob keeps receiving through c. Asserted: Alice's delivery in
//     the last 15 s (45-60 s) is at least 0.8, and her route to Bob left
//     the direct link. Why 0.8: by 45 s ab has been gone for 15 s; babeld
//     with 1 s hellos moved a's route within about 5.5 s of a link going
//     down when checked by hand (issue 10), so the window is well after
//     the handover; the slack is for a loaded 2-core machine under TCG.
//     (Measured here, 2026-12-02: the route left ab at 29 s, delivery 100 %
//     before, 47 % during, 95 % after, 100 % in the last 15 s.)
//   - static: the route stays on ab, so delivery stops when ab goes down:
//     at most 0.1 in the last 15 s (measured: 100 %, 45 %, 0 %, 0 %).
//
// Both run folders hold every series of issue 10 item 7, read back with
// telemetry/runs. Then a run stopped by SIGINT leaves the links at their
// declared quality and is marked incomplete. Last, forgelab compare on
// the two runs (checkCompare, compare_e2e_test.go).
func TestHandoverRuns(t *testing.T) {
	requireVMs(t)
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", filepath.Join(dir, "handover", "bin", "handover"), "../../examples/handover")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build examples/handover: %v\n%s", err, out)
	}
	scenario, err := filepath.Abs("../../examples/handover.toml")
	if err != nil {
		t.Fatal(err)
	}
	runDirs := map[string]string{} // variant: run folder, for compare
	for _, v := range []struct {
		variant string
		check   func(t *testing.T, s phases.Summary)
	}{
		{"babeld", func(t *testing.T, s phases.Summary) {
			if d := s.Delivery["last 15 s"]; !(d >= 0.8) {
				t.Errorf("babeld: delivery in the last 15 s %.2f, want >= 0.8", d)
			}
			if s.Moved < 0 {
				t.Errorf("babeld: Alice's route never left %s", s.FirstDev)
			}
		}},
		{"static", func(t *testing.T, s phases.Summary) {
			if d := s.Delivery["before"]; !(d >= 0.8) {
				t.Errorf("static: delivery before the handover %.2f, want >= 0.8 (the direct path works)", d)
			}
			if d := s.Delivery["last 15 s"]; d > 0.1 {
				t.Errorf("static: delivery in the last 15 s %.2f, want <= 0.1 (no path once ab is down)", d)
			}
			if s.Moved >= 0 {
				t.Errorf("static: the route left ab at %.0f s (to %s); static routes do not move", s.Moved, s.MovedTo)
			}
		}},
	} {
		t.Run(v.variant, func(t *testing.T) {
			lab := "flrun-" + v.variant
			src, err := os.ReadFile("../../examples/handover-" + v.variant + ".toml")
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "handover-"+v.variant+".toml")
			text := strings.Replace(string(src), `name = "handover-`+v.variant+`"`, `name = "`+lab+`"`, 1)
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			forgelab(t, "destroy", lab)
			defer func() {
				mustForgelab(t, "destroy", lab)
				assertNothingLeft(t, lab)
			}()
			mustForgelab(t, "create", file)

			// Node addresses: a reaches b's, over ab while it is up.
			b4 := strings.TrimSpace(mustForgelab(t, "exec", lab, "a", "--", "getent hosts b.node | cut -d' ' -f1"))
			// (babeld may still be converging: a few tries.)
			ping := "for i in $(seq 20); do ping -c 1 -W 1 -I " + hostNode(t, lab, "a") + " " + b4 + " && exit 0; sleep 1; done; exit 1"
			if out := forgelab(t, "exec", lab, "a", "--", ping); out.code != 0 {
				t.Errorf("a cannot reach b's node address %s: %s%s", b4, out.stdout, out.stderr)
			}
			if v.variant == "static" {
				if route := mustForgelab(t, "exec", lab, "a", "--", "ip route get "+b4); !strings.Contains(route, "dev eth1") {
					t.Errorf("static route from a to b.node is not over ab (eth1): %s", route)
				}
			}

			out := mustForgelab(t, "run", "--no-status", "--variant", v.variant, lab, scenario)
			runDir := strings.TrimSpace(out)
			runDirs[v.variant] = runDir
			checkRunFolder(t, runDir, runs.StatusComplete)
			s, err := phases.Read(runDir)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			phases.Print(&b, []phases.Summary{s})
			t.Logf("%s\n%s", runDir, b.String())
			v.check(t, s)
			checkDeclared(t, lab)
			if v.variant == "babeld" {
				checkServeUI(t, stateDir(), lab, filepath.Base(runDir))
			}
			playChecks(t, lab, v.variant) // exec, logs -f, a killed runner (play_e2e_test.go)

			if v.variant == "static" {
				// Ctrl-C in the middle of a run.
				cmd := exec.Command(binPath, "--state-dir", stateDir(), "run", "--no-status", "--for", "40s", lab, scenario)
				var stdout strings.Builder
				cmd.Stdout = &stdout
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(25 * time.Second) // ab is losing packets by now
				cmd.Process.Signal(syscall.SIGINT)
				if err := cmd.Wait(); err != nil {
					t.Errorf("run stopped by SIGINT: %v", err)
				}
				runDirs["static-incomplete"] = strings.TrimSpace(stdout.String())
				checkRunFolder(t, runDirs["static-incomplete"], runs.StatusIncomplete)
				checkDeclared(t, lab)
			}
		})
	}
	if runDirs["babeld"] == "" || runDirs["static"] == "" {
		t.Fatal("a variant made no run: nothing to compare")
	}
	checkCompare(t, runDirs)
}

// hostNode is a host's node address, from its own /etc/hosts entry seen
// by another host.
func hostNode(t *testing.T, lab, host string) string {
	t.Helper()
	other := map[string]string{"a": "b", "b": "a", "c": "a"}[host]
	return strings.TrimSpace(mustForgelab(t, "exec", lab, other, "--", "getent hosts "+host+".node | cut -d' ' -f1"))
}

// checkRunFolder reads a run back and checks every series of issue 10
// item 7 is there.
func checkRunFolder(t *testing.T, dir string, status runs.Status) {
	t.Helper()
	r, err := runs.Open(dir)
	if err != nil {
		t.Fatalf("open run %q: %v", dir, err)
	}
	if r.Meta.Status != status {
		t.Errorf("run %s is %s (%s), want %s", r.Name(), r.Meta.Status, r.Meta.Reason, status)
	}
	fp := r.Meta.Fingerprint
	if fp.Accel == "" || fp.LabSHA256 == "" || len(fp.Images) == 0 || fp.Images[0].Digest == "" || fp.Kernel == "" {
		t.Errorf("fingerprint %+v", fp)
	}
	kinds := map[string]int{}
	for _, f := range r.Meta.Files {
		kinds[f.Kind]++
	}
	for _, k := range []string{runs.KindInput, runs.KindTable, runs.KindEvents, runs.KindWorkload, runs.KindSerial} {
		if kinds[k] == 0 {
			t.Errorf("run %s has no %s file (files %+v)", r.Name(), k, r.Meta.Files)
		}
	}
	pos, err := r.Positions()
	if err != nil || len(pos) < 3*10*10 { // 3 hosts, 10 Hz, at least 10 s
		t.Errorf("positions: %d rows, %v", len(pos), err)
	}
	links, err := r.Links()
	if err != nil || len(links) < 6*10 { // 6 directions, 1 Hz, 10 s
		t.Errorf("link samples: %d rows, %v", len(links), err)
	}
	if hosts, err := r.Hosts(); err != nil || len(hosts) < 3*10 {
		t.Errorf("host samples: %d rows, %v", len(hosts), err)
	}
	evs, err := r.Events()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Source+" "+e.Action] = true
	}
	for _, want := range []string{"forgelab run.start", "scenario link.set", "scenario marker", "forgelab run.reset", "forgelab run.end"} {
		if !seen[want] {
			t.Errorf("run %s: no %q event", r.Name(), want)
		}
	}
	if recs, err := r.Workload("a", "alice"); err != nil || len(recs) < 10 {
		t.Errorf("alice: %d lines, %v", len(recs), err)
	}
}

// checkDeclared: every link is up at the quality the lab file declares
// (none: the demo's links have a model, no static quality).
func checkDeclared(t *testing.T, lab string) {
	t.Helper()
	var st netfabric.State
	if err := json.Unmarshal([]byte(mustForgelab(t, "link", "show", "-o", "json", lab)), &st); err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Links {
		if !l.Up {
			t.Errorf("link %s is down after the run", l.Name)
		}
		for _, d := range l.Directions {
			if d.Quality != (netfabric.Impairment{}) {
				t.Errorf("%s from %s: %+v after the run, want the declared quality (none)", l.Name, d.From, d.Quality)
			}
		}
	}
}

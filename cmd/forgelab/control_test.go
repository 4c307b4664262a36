package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgelab/forgelab/labs/plan"
	labstore "github.com/forgelab/forgelab/labs/store"
)

// The control path from the command line, without VMs: a ready lab with
// no links on the kernel fabric (changes touch no device), beside a lab
// whose state is damaged.
func TestControlFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FORGELAB_STATE_DIR", dir)
	s := &labstore.Store{Dir: dir}
	l, _ := s.Lab("clilab")
	os.MkdirAll(l.Dir, 0o755)
	st := &labstore.State{Lab: "clilab", ID: "abcd", Phase: labstore.PhaseReady, Fabric: "kernel",
		Plan: &plan.Plan{Lab: "clilab", ID: "abcd", Fabric: "kernel"}}
	if err := s.Recorder(st).Update(func(*labstore.State) {}); err != nil {
		t.Fatal(err)
	}
	bad, _ := s.Lab("damaged")
	os.MkdirAll(bad.Dir, 0o755)
	os.WriteFile(bad.State(), []byte("{"), 0o644)

	mustForgelab(t, "heal", "clilab")
	if r := forgelab(t, "partition", "clilab", "a", "b"); r.code == 0 || !strings.Contains(r.stderr, `no host "a"`) {
		t.Errorf("partition with unknown hosts: exit %d, %s", r.code, r.stderr)
	}
	if r := forgelab(t, "link", "reseed", "clilab"); r.code == 0 || !strings.Contains(r.stderr, `fabric = "userspace"`) {
		t.Errorf("reseed on the kernel fabric: exit %d, %s", r.code, r.stderr)
	}
	if r := forgelab(t, "heal", "../clilab"); r.code == 0 || !strings.Contains(r.stderr, "not a lab name") {
		t.Errorf("heal ../clilab: exit %d, %s", r.code, r.stderr)
	}

	// One JSON line per change, made or refused, with source cli.
	f, err := os.Open(l.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e labstore.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event line %q: %v", sc.Text(), err)
		}
		if e.Source != "cli" || e.Time.IsZero() {
			t.Errorf("event %+v", e)
		}
		got = append(got, e.Action+" "+e.Result)
	}
	if want := "heal ok, partition error, reseed error"; strings.Join(got, ", ") != want {
		t.Errorf("events %q, want %q", strings.Join(got, ", "), want)
	}

	// list keeps going past the damaged lab, and says why it is broken.
	out := mustForgelab(t, "list")
	if !strings.Contains(out, "clilab") || !strings.Contains(out, "broken") {
		t.Errorf("list:\n%s", out)
	}
	var rows []struct{ Lab, Phase, Error string }
	if err := json.Unmarshal([]byte(mustForgelab(t, "list", "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Lab != "clilab" || rows[0].Phase != "ready" || rows[1].Lab != "damaged" || rows[1].Phase != "broken" || !strings.Contains(rows[1].Error, "damaged") {
		t.Errorf("list -o json: %+v", rows)
	}
	// The lock file is still there after every change.
	if _, err := os.Stat(filepath.Join(dir, "labs", ".clilab.lock")); err != nil {
		t.Errorf("lock file: %v", err)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/telemetry/runs"
)

// TestRunsCommands drives `forgelab runs` in process against runs made
// with the package API: no VMs, no binary.
func TestRunsCommands(t *testing.T) {
	state := t.TempDir()
	root := runs.Root(state)
	made := map[string]string{} // variant -> LAB/ID
	for i, variant := range []string{"babeld", "static"} {
		r, err := runs.Create(root, runs.Meta{Lab: "handover", Scenario: "drift", Variant: variant,
			Start: time.Date(2026, 12, 1, 23, 0, i, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		r.Position(time.Time{}, runs.Position{Host: "a", X: 1})
		if err := r.Close(runs.StatusComplete, ""); err != nil {
			t.Fatal(err)
		}
		made[variant] = "handover/" + r.ID()
	}
	archive := filepath.Join(t.TempDir(), "run.tar.gz")

	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		app := &cli.App{
			Name:           "forgelab",
			Flags:          []cli.Flag{&cli.StringFlag{Name: "state-dir"}},
			Commands:       []*cli.Command{runsCommand()},
			Writer:         &out,
			ErrWriter:      &out,
			ExitErrHandler: func(*cli.Context, error) {},
		}
		argv := append([]string{"forgelab", "--state-dir", state, "runs"}, args...)
		err := app.RunContext(context.Background(), hoistFlags(app, argv))
		return out.String(), err
	}

	tests := []struct {
		args  []string
		want  []string // substrings of the output
		err   string
		check func(t *testing.T, out string)
	}{
		{args: []string{"ls"}, want: []string{"RUN", "STATUS", made["static"], made["babeld"], "complete", "drift"},
			check: func(t *testing.T, out string) {
				if strings.Index(out, made["static"]) > strings.Index(out, made["babeld"]) {
					t.Error("not newest first")
				}
			}},
		{args: []string{"ls", "nolab"}, want: []string{"RUN"}},
		{args: []string{"ls", "-o", "json", "handover"}, check: func(t *testing.T, out string) {
			var list []runs.Summary
			if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 || list[0].Variant != "static" {
				t.Errorf("ls -o json: %v %s", err, out)
			}
		}},
		{args: []string{"show", made["babeld"]}, want: []string{"status:", "complete", "variant:", "babeld", "positions.csv", "table", "kernel:"}},
		{args: []string{"show", "-o", "json", made["static"]}, check: func(t *testing.T, out string) {
			var r runs.Run
			if err := json.Unmarshal([]byte(out), &r); err != nil || r.Meta.Variant != "static" || r.Meta.Status != runs.StatusComplete {
				t.Errorf("show -o json: %v %s", err, out)
			}
		}},
		{args: []string{"show", "../x"}, err: `lab ".." cannot name a file in a run folder`},
		{args: []string{"show"}, err: "usage: forgelab runs show RUN"},
		{args: []string{"export", made["babeld"], "-o", archive}, check: func(t *testing.T, _ string) {
			if st, err := os.Stat(archive); err != nil || st.Size() == 0 || st.Mode().Perm() != 0o600 {
				t.Errorf("archive: %v %v", st, err)
			}
		}},
		{args: []string{"export", made["babeld"]}, err: `"output" not set`},
		{args: []string{"rm", made["babeld"]}, want: []string{"removed " + made["babeld"]}},
		{args: []string{"show", made["babeld"]}, err: "no such run"},
		{args: []string{"import", archive}, want: []string{"imported " + made["babeld"]}},
		{args: []string{"show", made["babeld"]}, want: []string{"babeld"}},
		{args: []string{"import", archive}, err: "already there"},
		{args: []string{"rm", made["babeld"], made["static"]}, want: []string{"removed " + made["static"]}},
		{args: []string{"ls", "-o", "json"}, want: []string{"[]"}},
		{args: []string{"rm", "20990101T000000Z-0000"}, err: "forgelab runs ls lists the runs"},
	}
	for _, tt := range tests {
		out, err := run(tt.args...)
		name := strings.Join(tt.args, " ")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("runs %s: error %v, want one containing %q", name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("runs %s: %v", name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("runs %s: output lacks %q:\n%s", name, w, out)
			}
		}
		if tt.check != nil {
			tt.check(t, out)
		}
	}
}

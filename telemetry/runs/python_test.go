package runs

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// pythonReader loads every table and JSON lines file of a run with
// Python's csv and json modules (what pandas builds on), and prints per
// file its header and rows, and per table the first data row as floats.
const pythonReader = `
import csv, json, os, sys
run = sys.argv[1]
meta = json.load(open(os.path.join(run, "run.json")))
out = {"status": meta["status"], "files": {}}
for f in meta["files"]:
    p = os.path.join(run, f["path"])
    if f["kind"] == "table":
        with open(p, newline="") as fh:
            rows = list(csv.reader(fh))
        header, data = rows[0], rows[1:]
        first = [float(x) if x != "" else None for x in data[0][len(header) - len([h for h in header if h.startswith(("forgelab_", "libvirt_"))]):]] if data else []
        out["files"][f["path"]] = {"header": header, "rows": len(data), "first": first}
    elif f["path"].endswith(".jsonl"):
        with open(p) as fh:
            lines = [json.loads(l) for l in fh if l.strip()]
        out["files"][f["path"]] = {"header": list(lines[0].keys())[:2] if lines else [], "rows": len(lines)}
json.dump(out, sys.stdout)
`

// TestPythonReadsRun: the tables and JSON lines load in Python's csv and
// json modules with the documented headers and row counts.
func TestPythonReadsRun(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is missing: CI must install it (apt-get install python3)")
		}
		t.Skip("python3 not installed: install it to check that Python reads run folders")
	}
	f := writeFixture(t, t.TempDir())
	out, err := exec.Command(py, "-c", pythonReader, f.dir).Output()
	if err != nil {
		t.Fatalf("python3 could not read the run: %v\n%s", err, stderrOf(err))
	}
	var got struct {
		Status string
		Files  map[string]struct {
			Header []string
			Rows   int64
			First  []*float64
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python3 output %s: %v", out, err)
	}
	if got.Status != "complete" {
		t.Errorf("status %q", got.Status)
	}
	tables := map[string][]string{
		PositionsFile: positionSchema.header(),
		LinksFile:     linkSchema.header(),
		HostsFile:     hostSchema.header(),
	}
	for path, rows := range f.files {
		want, isTable := tables[path]
		if !isTable && !strings.HasSuffix(path, ".jsonl") {
			continue
		}
		g, ok := got.Files[path]
		if !ok {
			t.Errorf("python3 did not see %s", path)
			continue
		}
		if g.Rows != rows {
			t.Errorf("%s: python3 read %d rows, want %d", path, g.Rows, rows)
		}
		if !isTable {
			want = []string{"time", "t"}
		}
		if len(g.Header) < 2 || g.Header[0] != "time" || g.Header[1] != "t" || (isTable && len(g.Header) != len(want)) {
			t.Errorf("%s: python3 header %v, want %v", path, g.Header, want)
		}
	}
	// The first link row as Python sees it: the numbers written.
	first := got.Files[LinksFile].First
	if len(first) != len(linkSchema.values) || first[1] == nil || *first[1] != 1e7 || first[4] == nil || *first[4] != 0.1 {
		t.Errorf("python3 read the first link row as %v", deref(first))
	}
}

func deref(fs []*float64) []any {
	out := make([]any, len(fs))
	for i, f := range fs {
		if f != nil {
			out[i] = *f
		}
	}
	return out
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

package runs

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// diff compares two slices by printed value, so NaN equals NaN and times
// compare by instant and zone, and describes the first difference.
func diff(got, want any) string {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	if g.Len() != w.Len() {
		return fmt.Sprintf("%d rows, want %d", g.Len(), w.Len())
	}
	for i := range g.Len() {
		gs, ws := fmt.Sprintf("%+v", g.Index(i)), fmt.Sprintf("%+v", w.Index(i))
		if gs != ws {
			return fmt.Sprintf("row %d:\n got %s\nwant %s", i, gs, ws)
		}
	}
	return ""
}

func TestRoundTrip(t *testing.T) {
	root := t.TempDir()
	f := writeFixture(t, root)
	r, err := Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		read func() (any, error)
		want any
	}{
		{"positions", func() (any, error) { return r.Positions() }, f.positions},
		{"links", func() (any, error) { return r.Links() }, f.links},
		{"hosts", func() (any, error) { return r.Hosts() }, f.hosts},
		{"events", func() (any, error) { return r.Events() }, f.events},
		{"workload", func() (any, error) { return r.Workload("b", "bob") }, f.workload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.read()
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(got, tt.want); d != "" {
				t.Error(d)
			}
		})
	}

	m := r.Meta
	if m.Status != StatusComplete || m.Lab != "handover" || m.Variant != "babeld" || m.Scenario != "drift" || !m.Start.Equal(t0) || m.End.IsZero() {
		t.Errorf("meta = %+v", m)
	}
	if m.Fingerprint.LabSHA256 != sha256Hex([]byte("[lab]\nname = \"handover\"\n")) || m.Fingerprint.Notes["quiet"] == "" ||
		m.Fingerprint.Seed != 42 || m.Fingerprint.GoVersion == "" || m.Fingerprint.Cores == 0 {
		t.Errorf("fingerprint = %+v", m.Fingerprint)
	}
	listed := map[string]File{}
	for _, file := range m.Files {
		listed[file.Path] = file
		st, err := os.Stat(filepath.Join(f.dir, file.Path))
		if err != nil {
			t.Errorf("listed file %s: %v", file.Path, err)
			continue
		}
		if st.Size() != file.Bytes {
			t.Errorf("%s: listed %d bytes, has %d", file.Path, file.Bytes, st.Size())
		}
		if st.Mode().Perm() != fileMode {
			t.Errorf("%s: mode %v, want %v", file.Path, st.Mode().Perm(), os.FileMode(fileMode))
		}
	}
	for path, rows := range f.files {
		got, ok := listed[path]
		if !ok {
			t.Errorf("%s not listed in run.json", path)
			continue
		}
		if got.Rows == nil || *got.Rows != rows {
			t.Errorf("%s: rows %v, want %d", path, got.Rows, rows)
		}
	}
	for _, p := range []string{"pcaps/ab.pcap", "pcaps/ca.pcap"} {
		if listed[p].Kind != KindPcap || listed[p].Rows != nil {
			t.Errorf("%s listed as %+v", p, listed[p])
		}
	}
	if w := r.Workloads(); len(w) != 2 || w[0].Host != "a" || w[1].Name != "bob" {
		t.Errorf("Workloads() = %+v", w)
	}
	for _, d := range []string{f.dir, filepath.Dir(f.dir), filepath.Join(f.dir, WorkloadsDir)} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != dirMode {
			t.Errorf("%s: mode %v, want %v (%v)", d, st.Mode().Perm(), os.FileMode(dirMode), err)
		}
	}
	// The header is the documented one.
	data, _ := os.ReadFile(filepath.Join(f.dir, LinksFile))
	if !strings.HasPrefix(string(data), "time,t,link,from,forgelab_link_up,forgelab_link_rate_bits_per_second,") {
		t.Errorf("links.csv header: %.120s", data)
	}
}

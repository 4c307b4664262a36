package labs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A scenario a request names is a file next to the lab file, never a
// path elsewhere.
func TestScenarioFile(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"lab.toml", "drift.toml", "plain"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("duration = \"1s\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	st := &State{Lab: "l", File: filepath.Join(dir, "lab.toml")}
	for _, tc := range []struct {
		name, want string
		bad        bool
	}{
		{"", "", false},
		{"drift.toml", filepath.Join(dir, "drift.toml"), false},
		{"drift", filepath.Join(dir, "drift.toml"), false},
		{"plain", filepath.Join(dir, "plain"), false},
		{"../drift.toml", "", true},
		{"/etc/passwd", "", true},
		{"..", "", true},
		{"sub.toml", "", true}, // a directory
		{"missing", "", true},
		{`a\b`, "", true},
	} {
		got, err := ScenarioFile(st, tc.name)
		if tc.bad {
			if !errors.Is(err, ErrBadScenario) {
				t.Errorf("ScenarioFile(%q) = %q, %v; want ErrBadScenario", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ScenarioFile(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

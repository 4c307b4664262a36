package ui_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/forgelab/forgelab/telemetry/ui"
)

// TestOffline: the page loads nothing from the network; every file it
// names is embedded.
func TestOffline(t *testing.T) {
	files := ui.FS()
	remote := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`)
	local := regexp.MustCompile(`(?:src|href)="([^"#:]+)"|from "\./([^"]+)"`)
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path, "vendor/") {
			return err
		}
		data, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		if remote.Match(data) {
			t.Errorf("%s loads something from the network", path)
		}
		for _, m := range local.FindAllStringSubmatch(string(data), -1) {
			name := m[1] + m[2]
			if _, err := fs.Stat(files, name); err != nil {
				t.Errorf("%s names %s, which is not embedded", path, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVendoredVersions: package.json pins exact versions, the lock file
// has them, and vendor/VERSIONS (written by vendor.sh) says the vendored
// files are those.
func TestVendoredVersions(t *testing.T) {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	read := func(path string, v any) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	read("package.json", &pkg)
	read("package-lock.json", &lock)
	versions, err := os.ReadFile("static/vendor/VERSIONS")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range pkg.Dependencies {
		if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(want) {
			t.Errorf("package.json: %s %q is not an exact version", name, want)
		}
		if got := lock.Packages["node_modules/"+name].Version; got != want {
			t.Errorf("package-lock.json has %s %s, package.json %s: run npm install --ignore-scripts in telemetry/ui", name, got, want)
		}
		if !strings.Contains(string(versions), name+" "+want+" ") {
			t.Errorf("static/vendor/VERSIONS lacks %s %s: run telemetry/ui/vendor.sh", name, want)
		}
	}
}

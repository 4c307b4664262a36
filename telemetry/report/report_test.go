package report

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgelab/forgelab/telemetry/compare"
	"github.com/forgelab/forgelab/telemetry/compare/comparetest"
	"github.com/forgelab/forgelab/telemetry/report/reporttest"
	"github.com/forgelab/forgelab/telemetry/serve/uitest"
)

func fixtureReport(t *testing.T) *compare.Report {
	t.Helper()
	root, good, plain := comparetest.Pair(t)
	rep, err := compare.Load(root, []string{good.Name(), plain.Name()}, compare.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// One figure per metric's series, per headline metric and grouping, and
// the loss condition.
func TestFigures(t *testing.T) {
	rep := fixtureReport(t)
	figs, err := Figures(rep)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, f := range figs {
		kinds[f.Kind]++
	}
	// 8 metrics; 3 headline metrics x (loss, phase); loss on ab.
	if kinds["series"] != 8 || kinds["buckets"] != 6 || kinds["condition"] != 1 {
		t.Errorf("figures by kind %v, want 8 series, 6 buckets, 1 condition", kinds)
	}
	dir := t.TempDir()
	files, err := WritePNGs(filepath.Join(dir, "png"), rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(figs) {
		t.Errorf("%d PNGs for %d figures", len(files), len(figs))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 150 {
			t.Errorf("%s is %v", f, b)
		}
	}
	if !strings.HasSuffix(files[0], "condition-loss-ab.png") {
		t.Errorf("first PNG %s", files[0])
	}
}

// The page holds everything itself: no script, no stylesheet, font or
// image to fetch; the statements and every figure as inline SVG.
func TestHTML(t *testing.T) {
	rep := fixtureReport(t)
	var b bytes.Buffer
	if err := WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"<script", "<link", "src=\"http", "href=\"http", "@import", "<?xml"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: not self-contained", bad)
		}
	}
	if n := strings.Count(page, "<svg"); n != 15 {
		t.Errorf("%d inline SVGs, want 15", n)
	}
	if !strings.Contains(page, "With 5-10 % loss on ab, good kept 95 % of its delivery (alice); plain 60 %.") {
		t.Error("page lacks the 5-10 % statement")
	}
}

// In a real browser: no console error, every plot laid out, the
// statements there, nothing fetched.
func TestHTMLInChromium(t *testing.T) {
	uitest.Chromium(t) // missing: a failure in CI, a skip elsewhere
	rep := fixtureReport(t)
	path := filepath.Join(t.TempDir(), "report.html")
	if err := WriteHTMLFile(path, rep); err != nil {
		t.Fatal(err)
	}
	p := reporttest.Open(t, path, filepath.Join(uitest.Artifacts(t), "compare-fixture.png"))
	if len(p.Problems) > 0 {
		t.Errorf("console: %v", p.Problems)
	}
	if p.Plots != 15 || len(p.External) > 0 || len(p.Statements) != len(rep.Statements) {
		t.Errorf("page shows %d plots (want 15), external %v, %d statements (want %d)", p.Plots, p.External, len(p.Statements), len(rep.Statements))
	}
}

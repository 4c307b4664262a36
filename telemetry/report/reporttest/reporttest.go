// Package reporttest opens a compare HTML report in a real headless
// Chromium (serve/uitest's browser) and reads back what the page shows,
// for the report's own tests and the end-to-end test on real runs.
package reporttest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/forgelab/forgelab/telemetry/serve/uitest"
)

// Page is what the report shows in the browser.
type Page struct {
	// Plots counts the figures whose inline SVG the browser laid out at
	// a usable size (wider than 200 px); SVGs and Images count the
	// elements whatever their size.
	Plots  int `json:"plots"`
	SVGs   int `json:"svgs"`
	Images int `json:"images"`
	// Statements are the texts of the condition statements.
	Statements []string `json:"statements"`
	// External are src and href attributes that point anywhere but into
	// the page itself: a self-contained report has none.
	External []string `json:"external"`
	Warnings int      `json:"warnings"`
	// Problems are the console errors, exceptions and failed loads.
	Problems []string `json:"-"`
}

// Open loads the report at path in headless Chromium, writes a PNG of the
// whole page to shot (for people and CI artifacts), and returns what the
// page shows.
func Open(t testing.TB, path, shot string) Page {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	b := uitest.NewBrowser(t)
	b.Do(t, chromedp.Navigate("file://"+abs))
	b.Wait(t, `document.readyState === "complete"`, 30_000_000_000)
	var p Page
	b.Eval(t, `(() => {
		const svgs = [...document.querySelectorAll("svg")];
		return {
			plots: [...document.querySelectorAll("figure.plot svg")].filter(s => s.getBoundingClientRect().width > 200).length,
			svgs: svgs.length,
			images: document.images.length,
			statements: [...document.querySelectorAll("#statements li")].map(l => l.textContent),
			external: [...document.querySelectorAll("[src],[href]")].map(e => e.getAttribute("src") || e.getAttribute("href")).filter(u => !u.startsWith("#") && !u.startsWith("data:")),
			warnings: document.querySelectorAll("#warnings p").length,
		};
	})()`, &p)
	// The whole page, as a person scrolling through it sees it.
	// Quality 100 makes it a PNG.
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", shot, len(png))
	p.Problems = b.Problems()
	return p
}

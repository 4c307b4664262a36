// Package uitest checks forgelab serve's web page in a real headless
// Chromium (Debian's chromium package, driven with chromedp), against any
// backend: the fake in serve's own tests, a lab of real VMs in end-to-end
// tests. The page exposes what it drew as window.forgelab, so the checks
// read the drawing rather than guess at pixels; screenshots are written for
// people to look at (Artifacts says where).
package uitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
)

// Chromium finds the browser: missing, it fails the test in CI (which
// installs it) and skips it elsewhere.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing: .ci/setup installs Debian's chromium package")
	}
	t.Skip("chromium is missing: apt-get install chromium")
	return ""
}

// Artifacts is where screenshots go, kept after the test for people (and
// CI) to look at: $FORGELAB_ARTIFACTS, else bin/artifacts at the top of
// the module the test runs in (bin/ is ignored by git).
func Artifacts(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("FORGELAB_ARTIFACTS")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("find where to write screenshots: %v (set FORGELAB_ARTIFACTS to a directory)", err)
		}
		dir = filepath.Join(root, "bin", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// moduleRoot is the nearest directory up from the working directory (a
// test's package) that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = up
	}
}

// Browser is one headless Chromium tab that keeps the page's console
// errors, uncaught exceptions and failed loads.
type Browser struct {
	Ctx      context.Context
	mu       sync.Mutex
	problems []string
}

// NewBrowser starts Chromium for the test; it ends with the test.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t)),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.WindowSize(1400, 900),
		// WebGL for the 3-D view, in software: there is no GPU.
		chromedp.Flag("use-angle", "swiftshader"),
		chromedp.Flag("enable-unsafe-swiftshader", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })

	// Start the tab, then read its console until the test ends.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the browser log: %v", err)
	}
	b := &Browser{Ctx: ctx}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s at %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// Problems are the errors the page logged so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.problems)
}

// Do runs chromedp actions (navigate, click, type) and fails the test on
// an error.
func (b *Browser) Do(t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// Eval runs a JavaScript expression in the page and decodes its value
// into v (nil: ignore it).
func (b *Browser) Eval(t testing.TB, js string, v any) {
	t.Helper()
	out, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string]("JSON.stringify(("+js+"))"))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("evaluate %s: %v (%s)", js, err, out)
		}
	}
}

// Wait polls a JavaScript condition until it holds, failing the test after
// d; it returns how long it took.
func (b *Browser) Wait(t testing.TB, js string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var ok bool
		b.Eval(t, js, &ok)
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("after %v, still not %s", d, js)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Screenshot writes a PNG of the element sel to dir/name.
func (b *Browser) Screenshot(t testing.TB, dir, name, sel string) {
	t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.Screenshot(sel, chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("screenshot %s: %v", sel, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}

// Drawn2D is what window.forgelab.topo2d() reports: the 2-D view's hosts
// (model coordinates: x right, y down) and link elements.
type Drawn2D struct {
	Scale  float64     `json:"scale"`
	Placed bool        `json:"placed"`
	Hosts  []DrawnHost `json:"hosts"`
	Links  []DrawnLink `json:"links"`
	Mgmt   int         `json:"mgmt"` // management edges shown
}

type DrawnHost struct {
	Name    string  `json:"name"`
	X       float64 `json:"x"`
	Y       float64 `json:"y"`
	Visible bool    `json:"visible"`
	State   string  `json:"state"`
}

type DrawnLink struct {
	ID          string  `json:"id"`
	Link        string  `json:"link"`
	Color       string  `json:"color"`
	Style       string  `json:"style"` // solid, dashed (down or partitioned)
	Width       float64 `json:"width"` // by rate: 6 unlimited, less for slower
	Loss        float64 `json:"loss"`
	Up          bool    `json:"up"`
	Partitioned bool    `json:"partitioned"`
	Path        bool    `json:"path"` // a conversation's path uses it
	Visible     bool    `json:"visible"`
}

// Topo2D reads the 2-D view.
func (b *Browser) Topo2D(t testing.TB) Drawn2D {
	t.Helper()
	var d Drawn2D
	b.Eval(t, `window.forgelab.topo2d()`, &d)
	return d
}

// Lab is the lab the page is checked against, read as a user would check
// it: the fake's own answers, or serve's API and the forgelab CLI for a
// lab of VMs.
type Lab struct {
	Name string
	// Topology is the lab as serve's API reports it: the hosts (and their
	// positions) and links the page must draw.
	Topology func(ctx context.Context) (*backend.Topology, error)
	// Links is the fabric's state (`forgelab link show`): a change made in
	// the page must show there.
	Links func(ctx context.Context) (netfabric.State, error)
	// ChangeElsewhere sets the loss of what from sends on link, in
	// percent, behind the page's back (as `forgelab link set` does).
	ChangeElsewhere func(ctx context.Context, link, from string, loss float64) error
}

// FromBackend reads lab name from b directly (a fake backend).
func FromBackend(b backend.Backend, name string) Lab {
	return Lab{
		Name:     name,
		Topology: func(ctx context.Context) (*backend.Topology, error) { return b.Topology(ctx, name) },
		Links:    func(ctx context.Context) (netfabric.State, error) { return b.Links(ctx, name) },
	}
}

// Page is the address of serve's page at base showing lab: base may carry
// a #token=... fragment, which stays last.
func Page(t testing.TB, base, lab string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("page address %q: %v", base, err)
	}
	q := u.Query()
	q.Set("lab", lab)
	u.RawQuery = q.Encode()
	return u.String()
}

// Check runs the checks every lab's page must pass, on the page at base
// (serve's address, ending in /, with #token=... when serve has one),
// writing screenshots to dir:
//
//   - every host and link of the lab is drawn, hosts at the positions the
//     API reports (one scale for the lab, y up);
//   - a link-quality change made in the page's form reaches the backend;
//   - a change made elsewhere shows in the page within a second;
//   - charts fill, and the 3-D view draws every host and link;
//   - screenshots: <prefix>2d.png, <prefix>chart.png, <prefix>live.png,
//     <prefix>3d.png;
//   - the page logged no errors.
//
// It changes the quality of the lab's first link from its first endpoint.
func Check(t *testing.T, b *Browser, base string, lab Lab, dir, prefix string) {
	ctx := b.Ctx
	topo, err := lab.Topology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Links) == 0 {
		t.Fatalf("lab %s has no links to check", lab.Name)
	}
	b.Do(t, chromedp.Navigate(Page(t, base, lab.Name)))
	b.Wait(t, fmt.Sprintf(`!!(window.forgelab && window.forgelab.ready && window.forgelab.lab === %q && window.forgelab.snapshots > 2)`, lab.Name), 30*time.Second)

	t.Run("every host and link drawn, hosts where the API puts them", func(t *testing.T) {
		d := b.Topo2D(t)
		if len(d.Hosts) != len(topo.Hosts) {
			t.Errorf("%d hosts drawn, the lab has %d", len(d.Hosts), len(topo.Hosts))
		}
		placed := slices.ContainsFunc(topo.Hosts, func(h backend.Host) bool { return h.Position != nil })
		if placed && (!d.Placed || d.Scale <= 0) {
			t.Fatalf("hosts not placed by position: %+v", d)
		}
		for _, h := range topo.Hosts {
			i := slices.IndexFunc(d.Hosts, func(x DrawnHost) bool { return x.Name == h.Name })
			if i < 0 || !d.Hosts[i].Visible {
				t.Errorf("host %s not drawn", h.Name)
				continue
			}
			if h.Position == nil {
				continue
			}
			// One scale for the lab, y up: drawn at (x·s, -y·s).
			got := d.Hosts[i]
			if math.Abs(got.X-h.Position[0]*d.Scale) > 0.01 || math.Abs(got.Y+h.Position[1]*d.Scale) > 0.01 {
				t.Errorf("host %s drawn at (%v, %v), API position %v × scale %v", h.Name, got.X, got.Y, *h.Position, d.Scale)
			}
		}
		for _, l := range topo.Links {
			n := 0
			for _, e := range d.Links {
				if e.Link == l.Name && e.Visible {
					n++
				}
			}
			want := 1
			if l.Segment() {
				want = len(l.Endpoints) // a segment: one edge to each host
			}
			if n != want {
				t.Errorf("link %s: %d edges drawn, want %d", l.Name, n, want)
			}
		}
		b.Screenshot(t, dir, prefix+"2d.png", "#view-2d")
	})

	link, from := topo.Links[0].Name, topo.Links[0].Endpoints[0]
	t.Run("a change made in the page reaches the backend", func(t *testing.T) {
		b.Eval(t, fmt.Sprintf(`(() => { const s = document.querySelector('#quality select[name=link]'); s.value = %q; s.dispatchEvent(new Event('change')); return true; })()`, link), nil)
		b.Do(t,
			chromedp.SetValue(`#quality select[name=from]`, from),
			chromedp.SetValue(`#quality input[name=loss]`, ""),
			chromedp.SendKeys(`#quality input[name=loss]`, "12.5"),
			chromedp.Click(`#apply-quality`),
		)
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, err := lab.Links(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if lossOf(st.Links, link, from) == 12.5 {
				break
			}
			if time.Now().After(deadline) {
				var msg string
				b.Eval(t, `document.querySelector('#message').textContent`, &msg)
				t.Fatalf("loss of %s from %s is %v, not the 12.5%% set in the page (page says %q)", link, from, lossOf(st.Links, link, from), msg)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("a change made elsewhere shows within a second", func(t *testing.T) {
		if err := lab.ChangeElsewhere(ctx, link, from, 33); err != nil {
			t.Fatal(err)
		}
		took := b.Wait(t, fmt.Sprintf(`window.forgelab.topo2d().links.some(e => e.link === %q && e.loss === 33)`, link), time.Second)
		t.Logf("shown after %v", took)
	})

	t.Run("chart", func(t *testing.T) {
		b.Wait(t, `window.forgelab.chart().series.length > 0 && window.forgelab.chart().points > 5`, 10*time.Second)
		b.Screenshot(t, dir, prefix+"chart.png", "#page-live .charts")
		b.Screenshot(t, dir, prefix+"live.png", "body")
	})

	t.Run("3-D view", func(t *testing.T) {
		b.Eval(t, `window.forgelab.show('live', '3d'), true`, nil)
		b.Wait(t, fmt.Sprintf(`window.forgelab.topo3d().nodes === %d && window.forgelab.topo3d().fitted && !!document.querySelector('#view-3d canvas')`, len(topo.Hosts)), 10*time.Second)
		var d struct {
			LinkNames []string `json:"linkNames"`
		}
		b.Eval(t, `window.forgelab.topo3d()`, &d)
		for _, l := range topo.Links {
			if !slices.Contains(d.LinkNames, l.Name) {
				t.Errorf("3-D view lacks link %s (has %v)", l.Name, d.LinkNames)
			}
		}
		time.Sleep(time.Second) // a few frames after the camera moved
		b.Screenshot(t, dir, prefix+"3d.png", "#view-3d")
		b.Eval(t, `window.forgelab.show('live', '2d'), true`, nil)
	})

	if p := b.Problems(); len(p) > 0 {
		t.Errorf("the page logged errors:\n%s", p)
	}
}

func lossOf(links []netfabric.LinkState, link, from string) float64 {
	for _, l := range links {
		for _, d := range l.Directions {
			if l.Name == link && d.From == from {
				return d.Quality.Loss
			}
		}
	}
	return -1
}

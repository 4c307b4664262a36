package serve_test

// The web UI in a real headless Chromium (Debian's chromium package),
// driven with chromedp, against the server over the fake backend. The
// page exposes what it drew as window.forgelab, so the test reads the
// drawing rather than guessing at pixels; screenshots are kept as
// artifacts for people (FORGELAB_TEST_ARTIFACTS names their directory).

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend/backendtest"
	"github.com/forgelab/forgelab/telemetry/serve"
)

// chromium finds the browser: a failure in CI (which installs it), a skip
// elsewhere.
func chromium(t *testing.T) string {
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

// artifacts is where screenshots go.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FORGELAB_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts a headless Chromium and collects the page's console
// errors and uncaught exceptions.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.WindowSize(1400, 900),
		// WebGL for the 3-D view, in software: there is no GPU.
		chromedp.Flag("use-angle", "swiftshader"),
		chromedp.Flag("enable-unsafe-swiftshader", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })

	// Start the tab, then read its console (calls, uncaught exceptions,
	// browser log entries such as failed loads) until the test ends.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the browser log: %v", err)
	}
	var mu sync.Mutex
	var problems []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s at %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(problems)
	}
}

// eval runs a JavaScript expression and decodes its value.
func eval(t *testing.T, ctx context.Context, js string, v any) {
	t.Helper()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string]("JSON.stringify(("+js+"))"))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("evaluate %s: %v (%s)", js, err, out)
		}
	}
}

// waitJS polls a JavaScript condition until it holds or d passes; it
// returns how long it took.
func waitJS(t *testing.T, ctx context.Context, js string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var ok bool
		eval(t, ctx, js, &ok)
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("after %v, still not %s", d, js)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func screenshot(t *testing.T, ctx context.Context, dir, name, sel string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(sel, chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("screenshot %s: %v", sel, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}

type drawn2D struct {
	Scale  float64 `json:"scale"`
	Placed bool    `json:"placed"`
	Hosts  []struct {
		Name    string  `json:"name"`
		X       float64 `json:"x"`
		Y       float64 `json:"y"`
		Visible bool    `json:"visible"`
		State   string  `json:"state"`
	} `json:"hosts"`
	Links []struct {
		ID          string  `json:"id"`
		Link        string  `json:"link"`
		Color       string  `json:"color"`
		Style       string  `json:"style"`
		Loss        float64 `json:"loss"`
		Up          bool    `json:"up"`
		Partitioned bool    `json:"partitioned"`
		Visible     bool    `json:"visible"`
	} `json:"links"`
	Mgmt int `json:"mgmt"`
}

func TestBrowser(t *testing.T) {
	ctx, problems := browser(t)
	dir := artifacts(t)
	f := backendtest.New()
	s, err := serve.New(f, serve.Config{Listen: "127.0.0.1:0", Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer func() {
		srv.CloseClientConnections() // the page's live stream never ends by itself
		srv.Close()
	}()
	topo, _ := f.Topology(context.Background(), "demo")

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `window.forgelab && window.forgelab.ready && window.forgelab.snapshots > 3`, 15*time.Second)

	t.Run("every host and link drawn, hosts where the API puts them", func(t *testing.T) {
		var d drawn2D
		eval(t, ctx, `window.forgelab.topo2d()`, &d)
		if !d.Placed || d.Scale <= 0 {
			t.Fatalf("hosts not placed by position: %+v", d)
		}
		if len(d.Hosts) != len(topo.Hosts) {
			t.Errorf("%d hosts drawn, the lab has %d", len(d.Hosts), len(topo.Hosts))
		}
		for _, h := range topo.Hosts {
			i := slices.IndexFunc(d.Hosts, func(x struct {
				Name    string  `json:"name"`
				X       float64 `json:"x"`
				Y       float64 `json:"y"`
				Visible bool    `json:"visible"`
				State   string  `json:"state"`
			}) bool {
				return x.Name == h.Name
			})
			if i < 0 || !d.Hosts[i].Visible {
				t.Errorf("host %s not drawn", h.Name)
				continue
			}
			// One scale for the lab, y up: screen = (x·s, -y·s).
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
		screenshot(t, ctx, dir, "ui-2d.png", "#view-2d")
	})

	t.Run("a change made in the page reaches the backend", func(t *testing.T) {
		eval(t, ctx, `(() => { const s = document.querySelector('#quality select[name=link]'); s.value = 'ab'; s.dispatchEvent(new Event('change')); return true; })()`, nil)
		err := chromedp.Do(ctx,
			chromedp.SetValue(`#quality select[name=from]`, "a"),
			chromedp.SendKeys(`#quality input[name=loss]`, "25"),
			chromedp.SendKeys(`#quality input[name=delay]`, "30"),
			chromedp.Click(`#apply-quality`),
		)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			calls := f.Calls()
			if i := slices.IndexFunc(calls, func(c backendtest.Call) bool { return c.Action == "link.set" }); i >= 0 {
				c := calls[i]
				if c.Source != "ui" || c.Args["link"] != "ab" || c.Args["from"] != "a" {
					t.Errorf("backend got %+v, want link.set of ab from a with source ui", c)
				}
				break
			}
			if time.Now().After(deadline) {
				var msg string
				eval(t, ctx, `document.querySelector('#message').textContent`, &msg)
				t.Fatalf("no link.set reached the backend (page says %q)", msg)
			}
			time.Sleep(20 * time.Millisecond)
		}
		st, _ := f.Links(context.Background(), "demo")
		if l := lossOf(st, "ab", "a"); l != 25 {
			t.Errorf("loss of ab from a is %v, want 25", l)
		}
		// The page shows the event with its source.
		waitJS(t, ctx, `document.querySelector('#events').textContent.includes('[ui] link.set')`, time.Second)
	})

	t.Run("a change made elsewhere shows within a second", func(t *testing.T) {
		if err := f.SetQuality("demo", "bc", "b", netfabric.Impairment{Loss: 40}); err != nil {
			t.Fatal(err)
		}
		took := waitJS(t, ctx, `window.forgelab.topo2d().links.some(e => e.link === 'bc' && e.loss === 40)`, time.Second)
		t.Logf("shown after %v", took)
		if err := f.SetLinkUp(context.Background(), "cli", "demo", "cd", false); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, `window.forgelab.topo2d().links.some(e => e.link === 'cd' && e.style === 'dashed' && e.up === false)`, time.Second)
		if err := f.Move("demo", "a", [3]float64{-50, 20, 0}); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, `(() => { const d = window.forgelab.topo2d(); const a = d.hosts.find(h => h.name === 'a');
			return Math.abs(a.x + 50 * d.scale) < 0.01 && Math.abs(a.y + 20 * d.scale) < 0.01; })()`, time.Second)
	})

	t.Run("partition, heal and a host pause from the page", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.SendKeys(`#partition input[name=groups]`, "a,b | c,d"),
			chromedp.Click(`#partition button[type=submit]`),
		)
		if err != nil {
			t.Fatal(err)
		}
		// bc joins b and c, now apart: drawn cut; ab stays.
		waitJS(t, ctx, `(() => { const l = window.forgelab.topo2d().links;
			return l.some(e => e.link === 'bc' && e.partitioned && e.style === 'dashed') && l.some(e => e.link === 'ab' && !e.partitioned); })()`, 2*time.Second)
		screenshot(t, ctx, dir, "ui-2d-partition.png", "#view-2d")
		if err := chromedp.Do(ctx, chromedp.Click(`#heal`)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, `!window.forgelab.topo2d().links.some(e => e.partitioned)`, 2*time.Second)
		eval(t, ctx, `(() => { document.querySelector('#host select[name=host]').value = 'b'; return true; })()`, nil)
		if err := chromedp.Do(ctx, chromedp.Click(`#host button[data-action=pause]`)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, `window.forgelab.topo2d().hosts.some(h => h.name === 'b' && h.state === 'paused')`, 2*time.Second)
		var got []string
		for _, c := range f.Calls() {
			if c.Source == "ui" {
				got = append(got, c.Action)
			}
		}
		if want := []string{"link.set", "partition", "heal", "host.pause"}; !slices.Equal(got, want) {
			t.Errorf("the backend got %v from the page, want %v", got, want)
		}
		var groups [][]string
		for _, c := range f.Calls() {
			if c.Action == "partition" {
				groups, _ = c.Args["groups"].([][]string)
			}
		}
		if fmt.Sprint(groups) != "[[a b] [c d]]" {
			t.Errorf("partition groups %v, want [[a b] [c d]]", groups)
		}
	})

	t.Run("layers switch on and off", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Click(`#layers input[data-layer="link:ab"]`),
			chromedp.Click(`#layers input[data-layer="mgmt"]`),
		)
		if err != nil {
			t.Fatal(err)
		}
		var boxes map[string]bool
		eval(t, ctx, `Object.fromEntries([...document.querySelectorAll('#layers input')].map(c => [c.dataset.layer, c.checked]))`, &boxes)
		if boxes["link:ab"] || !boxes["mgmt"] {
			t.Fatalf("layer boxes after the clicks: %v", boxes)
		}
		waitJS(t, ctx, `(() => { const d = window.forgelab.topo2d();
			return !d.links.some(e => e.link === 'ab' && e.visible) && d.mgmt === 4; })()`, time.Second)
		chromedp.Do(ctx, chromedp.Click(`#layers input[data-layer="link:ab"]`))
	})

	t.Run("chart", func(t *testing.T) {
		waitJS(t, ctx, `window.forgelab.chart().series.length > 0 && window.forgelab.chart().points > 5`, 5*time.Second)
		screenshot(t, ctx, dir, "ui-chart.png", "#page-live .charts")
		screenshot(t, ctx, dir, "ui-live.png", "body")
	})

	t.Run("3-D view", func(t *testing.T) {
		eval(t, ctx, `window.forgelab.show('live', '3d'), true`, nil)
		waitJS(t, ctx, `window.forgelab.topo3d().nodes === 4 && window.forgelab.topo3d().fitted && !!document.querySelector('#view-3d canvas')`, 10*time.Second)
		var d struct {
			Nodes     int      `json:"nodes"`
			LinkNames []string `json:"linkNames"`
		}
		eval(t, ctx, `window.forgelab.topo3d()`, &d)
		for _, l := range topo.Links {
			if !slices.Contains(d.LinkNames, l.Name) {
				t.Errorf("3-D view lacks link %s (has %v)", l.Name, d.LinkNames)
			}
		}
		time.Sleep(1500 * time.Millisecond) // let it zoom to fit
		screenshot(t, ctx, dir, "ui-3d.png", "#view-3d")
		eval(t, ctx, `window.forgelab.show('live', '2d'), true`, nil)
	})

	t.Run("a recorded run replays", func(t *testing.T) {
		eval(t, ctx, `window.forgelab.show('runs'), true`, nil)
		waitJS(t, ctx, `window.forgelab.replay().run === '20260101-000000'`, 5*time.Second)
		eval(t, ctx, `window.forgelab.replayAt(15), true`, nil)
		var r struct {
			T    float64 `json:"t"`
			Topo drawn2D `json:"topo"`
		}
		eval(t, ctx, `window.forgelab.replay()`, &r)
		// DemoRun: a moves from x=0 at 10 m/s toward -x; ab's loss grows.
		for _, h := range r.Topo.Hosts {
			if h.Name == "a" && math.Abs(h.X-(-150*r.Topo.Scale)) > 0.01 {
				t.Errorf("replay at 15 s: a drawn at x=%v, want %v", h.X, -150*r.Topo.Scale)
			}
		}
		for _, e := range r.Topo.Links {
			if e.Link == "ab" && math.Abs(e.Loss-50) > 1e-6 {
				t.Errorf("replay at 15 s: ab loss %v%%, want 50%%", e.Loss)
			}
		}
		screenshot(t, ctx, dir, "ui-replay.png", "#page-runs")
	})

	t.Run("labs come and go; a lab without positions is laid out", func(t *testing.T) {
		eval(t, ctx, `window.forgelab.show('live', '2d'), true`, nil)
		nopos := backendtest.DemoTopology("nopos")
		for i := range nopos.Hosts {
			nopos.Hosts[i].Position = nil
		}
		f.AddLab(nopos)
		// The page lists labs every few seconds.
		waitJS(t, ctx, `[...document.querySelectorAll('#lab option')].some(o => o.value === 'nopos')`, 5*time.Second)
		eval(t, ctx, `(() => { const s = document.querySelector('#lab'); s.value = 'nopos'; s.dispatchEvent(new Event('change')); return true; })()`, nil)
		waitJS(t, ctx, `window.forgelab.lab === 'nopos' && window.forgelab.topo2d().placed === false && window.forgelab.topo2d().hosts.length === 4`, 5*time.Second)
		var d drawn2D
		eval(t, ctx, `window.forgelab.topo2d()`, &d)
		seen := map[[2]float64]string{}
		for _, h := range d.Hosts {
			p := [2]float64{math.Round(h.X), math.Round(h.Y)}
			if other, dup := seen[p]; dup || !h.Visible {
				t.Errorf("force layout: host %s at %v (visible %v) on top of %q", h.Name, p, h.Visible, other)
			}
			seen[p] = h.Name
		}
		screenshot(t, ctx, dir, "ui-2d-force.png", "#view-2d")
		// Destroyed: the page says so and goes back to a lab that exists.
		f.RemoveLab("nopos")
		waitJS(t, ctx, `window.forgelab.lab === 'demo' && !document.querySelector('#status').classList.contains('bad')`, 10*time.Second)
	})

	if p := problems(); len(p) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(p, "\n"))
	}
}

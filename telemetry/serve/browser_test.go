package serve_test

// The web page in headless Chromium against the fake backend: the checks
// every lab's page must pass (uitest.Check, which end-to-end tests run on
// a lab of VMs), then what only a fake makes easy: sources, partitions,
// layers, a recorded run, labs that come and go.

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend/backendtest"
	"github.com/forgelab/forgelab/telemetry/serve"
	"github.com/forgelab/forgelab/telemetry/serve/uitest"
)

func TestBrowser(t *testing.T) {
	f := backendtest.New()
	s, err := serve.New(f, serve.Config{Listen: "127.0.0.1:0", Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		srv.CloseClientConnections() // the page's live stream never ends by itself
		srv.Close()
	})
	b := uitest.NewBrowser(t) // closes before the server: cleanups run last first
	dir := uitest.Artifacts(t)
	ctx := context.Background()

	lab := uitest.FromBackend(f, "demo")
	lab.ChangeElsewhere = func(ctx context.Context, link, from string, loss float64) error {
		return f.SetQuality("demo", link, from, netfabric.Impairment{Loss: loss})
	}
	uitest.Check(t, b, srv.URL+"/", lab, dir, "ui-")

	t.Run("the page's changes carry source ui, and the log shows it", func(t *testing.T) {
		i := slices.IndexFunc(f.Calls(), func(c backendtest.Call) bool { return c.Action == "link.set" })
		if i < 0 || f.Calls()[i].Source != "ui" {
			t.Fatalf("backend calls %+v: want the page's link.set with source ui", f.Calls())
		}
		b.Wait(t, `document.querySelector('#events').textContent.includes('[ui] link.set')`, time.Second)
	})

	t.Run("link down and hosts that move show within a second", func(t *testing.T) {
		if err := f.SetLinkUp(ctx, "cli", "demo", "cd", false); err != nil {
			t.Fatal(err)
		}
		b.Wait(t, `window.forgelab.topo2d().links.some(e => e.link === 'cd' && e.style === 'dashed' && e.up === false)`, time.Second)
		if err := f.Move("demo", "a", [3]float64{-50, 20, 0}); err != nil {
			t.Fatal(err)
		}
		b.Wait(t, `(() => { const d = window.forgelab.topo2d(); const a = d.hosts.find(h => h.name === 'a');
			return Math.abs(a.x + 50 * d.scale) < 0.01 && Math.abs(a.y + 20 * d.scale) < 0.01; })()`, time.Second)
	})

	t.Run("a conversation's path follows the links it uses", func(t *testing.T) {
		b.Wait(t, `(() => { const l = window.forgelab.topo2d().links;
			return ['ab', 'bc'].every(n => l.some(e => e.link === n && e.path)) && !l.some(e => e.link === 'cd' && e.path); })()`, time.Second)
		if err := f.SetLinkUp(ctx, "cli", "demo", "bc", false); err != nil {
			t.Fatal(err)
		}
		// Over the segment now: its edges to b and c, not to d.
		b.Wait(t, `(() => { const l = window.forgelab.topo2d().links;
			return l.some(e => e.id === 'link:seg:b' && e.path) && l.some(e => e.id === 'link:seg:c' && e.path)
				&& !l.some(e => e.id === 'link:seg:d' && e.path) && !l.some(e => e.link === 'bc' && e.path); })()`, time.Second)
		b.Screenshot(t, dir, "ui-2d-path.png", "#view-2d")
		if err := f.SetLinkUp(ctx, "cli", "demo", "bc", true); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("partition, heal and a host pause from the page", func(t *testing.T) {
		b.Do(t,
			chromedp.SendKeys(`#partition input[name=groups]`, "a,b | c,d"),
			chromedp.Click(`#partition button[type=submit]`),
		)
		// bc joins b and c, now apart: drawn cut; ab stays.
		b.Wait(t, `(() => { const l = window.forgelab.topo2d().links;
			return l.some(e => e.link === 'bc' && e.partitioned && e.style === 'dashed') && l.some(e => e.link === 'ab' && !e.partitioned); })()`, 2*time.Second)
		b.Screenshot(t, dir, "ui-2d-partition.png", "#view-2d")
		b.Do(t, chromedp.Click(`#heal`))
		b.Wait(t, `!window.forgelab.topo2d().links.some(e => e.partitioned)`, 2*time.Second)
		b.Eval(t, `(() => { document.querySelector('#host select[name=host]').value = 'b'; return true; })()`, nil)
		b.Do(t, chromedp.Click(`#host button[data-action=pause]`))
		b.Wait(t, `window.forgelab.topo2d().hosts.some(h => h.name === 'b' && h.state === 'paused')`, 2*time.Second)
		var got []string
		var groups [][]string
		for _, c := range f.Calls() {
			if c.Source == "ui" {
				got = append(got, c.Action)
			}
			if c.Action == "partition" {
				groups, _ = c.Args["groups"].([][]string)
			}
		}
		if want := []string{"link.set", "partition", "heal", "host.pause"}; !slices.Equal(got, want) {
			t.Errorf("the backend got %v from the page, want %v", got, want)
		}
		if fmt.Sprint(groups) != "[[a b] [c d]]" {
			t.Errorf("partition groups %v, want [[a b] [c d]]", groups)
		}
	})

	t.Run("layers switch on and off", func(t *testing.T) {
		b.Do(t,
			chromedp.Click(`#layers input[data-layer="link:ab"]`),
			chromedp.Click(`#layers input[data-layer="mgmt"]`),
		)
		var boxes map[string]bool
		b.Eval(t, `Object.fromEntries([...document.querySelectorAll('#layers input')].map(c => [c.dataset.layer, c.checked]))`, &boxes)
		if boxes["link:ab"] || !boxes["mgmt"] {
			t.Fatalf("layer boxes after the clicks: %v", boxes)
		}
		b.Wait(t, `(() => { const d = window.forgelab.topo2d();
			return !d.links.some(e => e.link === 'ab' && e.visible) && d.mgmt === 4; })()`, time.Second)
		b.Do(t, chromedp.Click(`#layers input[data-layer="link:ab"]`), chromedp.Click(`#layers input[data-layer="mgmt"]`))
	})

	t.Run("a recorded run replays", func(t *testing.T) {
		b.Eval(t, `window.forgelab.show('runs'), true`, nil)
		b.Wait(t, `window.forgelab.replay().run === '20260101-000000' && !window.forgelab.replay().loading`, 5*time.Second)
		b.Eval(t, `window.forgelab.replayAt(15), true`, nil)
		var r struct {
			T    float64        `json:"t"`
			Topo uitest.Drawn2D `json:"topo"`
		}
		b.Eval(t, `window.forgelab.replay()`, &r)
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
			if e.Link == "ab" && e.Width != 3 {
				t.Errorf("replay at 15 s: ab drawn %v wide, want 3 (10 Mbit/s)", e.Width)
			}
		}
		// The run's recorded route: over ab and bc at 15 s, none once ab is down.
		b.Wait(t, `(() => { const r = window.forgelab.replay(); const l = r.topo.links;
			return r.paths.length === 1 && r.paths[0].hosts.join() === 'a,b,c'
				&& l.some(e => e.link === 'ab' && e.path) && l.some(e => e.link === 'bc' && e.path) && !l.some(e => e.link === 'cd' && e.path); })()`, time.Second)
		b.Screenshot(t, dir, "ui-replay.png", "#page-runs")
		b.Eval(t, `window.forgelab.replayAt(28), true`, nil)
		b.Wait(t, `window.forgelab.replay().paths.length === 0 && !window.forgelab.replay().topo.links.some(e => e.path)`, time.Second)
	})

	t.Run("labs come and go; a lab without positions is laid out", func(t *testing.T) {
		b.Eval(t, `window.forgelab.show('live', '2d'), true`, nil)
		nopos := backendtest.DemoTopology("nopos")
		for i := range nopos.Hosts {
			nopos.Hosts[i].Position = nil
		}
		f.AddLab(nopos)
		// The page lists labs every few seconds.
		b.Wait(t, `[...document.querySelectorAll('#lab option')].some(o => o.value === 'nopos')`, 5*time.Second)
		b.Eval(t, `(() => { const s = document.querySelector('#lab'); s.value = 'nopos'; s.dispatchEvent(new Event('change')); return true; })()`, nil)
		b.Wait(t, `window.forgelab.lab === 'nopos' && window.forgelab.topo2d().placed === false && window.forgelab.topo2d().hosts.length === 4`, 5*time.Second)
		seen := map[[2]float64]string{}
		for _, h := range b.Topo2D(t).Hosts {
			p := [2]float64{math.Round(h.X), math.Round(h.Y)}
			if other, dup := seen[p]; dup || !h.Visible {
				t.Errorf("force layout: host %s at %v (visible %v) on top of %q", h.Name, p, h.Visible, other)
			}
			seen[p] = h.Name
		}
		b.Screenshot(t, dir, "ui-2d-force.png", "#view-2d")
		// Destroyed: the page says so and goes back to a lab that exists.
		f.RemoveLab("nopos")
		b.Wait(t, `window.forgelab.lab === 'demo' && !document.querySelector('#status').classList.contains('bad')`, 10*time.Second)
	})

	t.Run("with a token, the page sends the one it was opened with", func(t *testing.T) {
		const token = "0123456789abcdef-page-token"
		ft := backendtest.New()
		st, err := serve.New(ft, serve.Config{Listen: "127.0.0.1:0", Token: token, Interval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		srvT := httptest.NewServer(st)
		defer func() { srvT.CloseClientConnections(); srvT.Close() }()
		b.Do(t, chromedp.Navigate(srvT.URL+"/#token="+token))
		b.Wait(t, `!!(window.forgelab && window.forgelab.ready) && !location.hash.includes('token')`, 10*time.Second)
		b.Do(t, chromedp.Click(`#heal`))
		b.Wait(t, `document.querySelector('#message').textContent === 'heal: done'`, 2*time.Second)
		if calls := ft.Calls(); len(calls) != 1 || calls[0].Action != "heal" {
			t.Errorf("backend calls %+v, want one heal", calls)
		}
		// Without it (a new tab's session), the change is refused and says why.
		b.Eval(t, `sessionStorage.clear(), true`, nil)
		b.Do(t, chromedp.Click(`#heal`))
		b.Wait(t, `document.querySelector('#message').textContent.includes('needs the token')`, 2*time.Second)
		if n := len(ft.Calls()); n != 1 {
			t.Errorf("%d calls reached the backend without the token", n-1)
		}
	})

	// A 401 answer is logged by the browser as a failed load: expected above.
	var problems []string
	for _, p := range b.Problems() {
		if !strings.Contains(p, "401") {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(problems, "\n"))
	}
}

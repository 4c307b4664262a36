package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
	"github.com/forgelab/forgelab/telemetry/runs"
	"github.com/forgelab/forgelab/telemetry/serve/uitest"
)

// checkServeUI is issue 11's web page on a lab of VMs: TestHandoverRuns
// calls it with its babeld lab up and one run recorded, so no lab boots
// for it. `forgelab serve` runs as a real process on a free loopback port
// with a token; headless Chromium opens its page.
//
//   - uitest.Check: every host and link drawn, hosts where the API puts
//     them; a loss set in the page's form shows in `forgelab link show`;
//     one set with `forgelab link set` shows in the page within a second;
//     charts; the 3-D view; no console errors;
//   - the recorded run replays: at 35 s (a has driven 250 m away, ab is
//     out of range) hosts are drawn where positions.csv has them, each
//     link by its recorded loss, and Alice's route to Bob, from her own
//     JSON lines, over the relay c;
//   - /metrics of the real lab passes `promtool check metrics`;
//   - a second serve on the same port is refused, naming the port.
//
// Screenshots go to uitest.Artifacts (bin/artifacts or
// $FORGELAB_ARTIFACTS): handover-2d.png, handover-chart.png,
// handover-live.png, handover-3d.png, handover-replay.png.
func checkServeUI(t *testing.T, stateDir, lab, runID string) {
	t.Run("web UI", func(t *testing.T) {
		start := time.Now()
		defer func() { t.Logf("web UI checks took %v", time.Since(start).Round(time.Second)) }()
		page, addr := startServe(t, stateDir)
		api := strings.TrimSuffix(page[:strings.Index(page, "#")], "/")
		defer forgelab(t, "link", "set", "--clear", lab, "ab") // the checks change ab's loss
		b := uitest.NewBrowser(t)
		dir := uitest.Artifacts(t)

		uitest.Check(t, b, page, uitest.Lab{
			Name: lab,
			Topology: func(ctx context.Context) (*backend.Topology, error) {
				var topo backend.Topology
				return &topo, getJSON(api+"/api/v1/labs/"+lab, &topo)
			},
			Links: func(ctx context.Context) (netfabric.State, error) {
				var st netfabric.State
				r := forgelab(t, "link", "show", "-o", "json", lab)
				if r.code != 0 {
					return st, fmt.Errorf("forgelab link show: %s", r.stderr)
				}
				return st, json.Unmarshal([]byte(r.stdout), &st)
			},
			ChangeElsewhere: func(ctx context.Context, link, from string, loss float64) error {
				if r := forgelab(t, "link", "set", "--from", from, "--loss", fmt.Sprintf("%g%%", loss), lab, link); r.code != 0 {
					return fmt.Errorf("forgelab link set: %s", r.stderr)
				}
				return nil
			},
		}, dir, "handover-")

		t.Run("the recorded run replays", func(t *testing.T) { checkReplay(t, b, dir, stateDir, lab, runID) })

		t.Run("a scenario starts and stops through the API", func(t *testing.T) { checkServeScenario(t, api, lab) })

		t.Run("/metrics passes promtool", func(t *testing.T) {
			resp, err := http.Get(api + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /metrics: %v %v", resp.Status, err)
			}
			if want := fmt.Sprintf(`forgelab_host_position_meters{axis="x",host="b",lab=%q} 150`, lab); !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
			cmd := exec.Command("promtool", "check", "metrics")
			cmd.Stdin = bytes.NewReader(body)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool check metrics: %v\n%s", err, out)
			}
		})

		t.Run("a second serve on the port is refused, naming it", func(t *testing.T) {
			r := forgelab(t, "serve", "--listen", addr)
			_, port, _ := net.SplitHostPort(addr)
			if r.code == 0 || !strings.Contains(r.stderr, "port "+port+" is taken") {
				t.Errorf("second serve on %s: exit %d, stderr %q; want a refusal naming port %s", addr, r.code, r.stderr, port)
			}
		})
	})
}

// checkReplay opens a recorded handover run in the page's runs view and
// checks the moment at 35 s against the run folder.
func checkReplay(t *testing.T, b *uitest.Browser, dir, stateDir, lab, runID string) {
	const at = 35.0
	r, err := runs.Open(filepath.Join(runs.Root(stateDir), lab, runID))
	if err != nil {
		t.Fatal(err)
	}
	b.Eval(t, `window.forgelab.show('runs'), true`, nil)
	li := fmt.Sprintf(`#runs li[data-run=%q]`, lab+"/"+runID)
	b.Wait(t, fmt.Sprintf(`!!document.querySelector(%q)`, li), 10*time.Second)
	b.Do(t, chromedp.Click(li))
	// (The runs view opens the newest run by itself too: wait for the one clicked.)
	b.Wait(t, fmt.Sprintf(`window.forgelab.replay().run === %q && !window.forgelab.replay().loading`, runID), 10*time.Second)
	b.Eval(t, fmt.Sprintf(`window.forgelab.replayAt(%g), true`, at), nil)
	var got struct {
		T     float64        `json:"t"`
		Topo  uitest.Drawn2D `json:"topo"`
		Paths []backend.Path `json:"paths"`
	}
	b.Eval(t, `window.forgelab.replay()`, &got)

	pos, err := r.Positions()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]runs.Position{}
	for _, p := range pos {
		if p.T <= at {
			want[p.Position.Host] = p.Position
		}
	}
	if len(got.Topo.Hosts) != 3 {
		t.Errorf("replay draws %d hosts, want 3", len(got.Topo.Hosts))
	}
	for _, h := range got.Topo.Hosts {
		p, ok := want[h.Name]
		s := got.Topo.Scale
		if !ok || math.Abs(h.X-p.X*s) > 0.05 || math.Abs(h.Y+p.Y*s) > 0.05 {
			t.Errorf("replay at %g s: %s drawn at (%.2f, %.2f), positions.csv has (%v, %v) × scale %v", at, h.Name, h.X, h.Y, p.X, p.Y, s)
		}
	}
	if a := want["a"]; math.Abs(a.X-(-250)) > 1.5 {
		t.Errorf("positions.csv: a at x=%v at %g s, want about -250 (the lab file's linear move)", a.X, at)
	}

	samples, err := r.Links()
	if err != nil {
		t.Fatal(err)
	}
	loss := map[string]float64{}
	for _, s := range samples {
		if s.T <= at {
			loss[s.Link+" "+s.From] = s.LossRatio
		}
	}
	for _, e := range got.Topo.Links {
		w := 0.0
		for k, v := range loss {
			if strings.HasPrefix(k, e.Link+" ") {
				w = max(w, 100*v)
			}
		}
		if math.Abs(e.Loss-w) > 1e-6 {
			t.Errorf("replay at %g s: %s drawn with %v%% loss, links.csv has %v%%", at, e.Link, e.Loss, w)
		}
		if e.Link == "ab" && e.Up && e.Loss < 100 {
			t.Errorf("replay at %g s: ab drawn up with %v%% loss; a and b are 400 m apart, out of range", at, e.Loss)
		}
	}
	// babeld moved Alice's route off ab by 30 s (TestHandoverRuns
	// checks that from the same lines): over c now.
	i := slices.IndexFunc(got.Paths, func(p backend.Path) bool { return len(p.Hosts) > 0 && p.Hosts[0] == "a" })
	if i < 0 || !slices.Equal(got.Paths[i].Hosts, []string{"a", "c", "b"}) {
		t.Errorf("replay at %g s: paths %+v, want Alice's a → c → b", at, got.Paths)
	}
	b.Wait(t, `(() => { const l = window.forgelab.replay().topo.links;
			return l.some(e => e.link === 'ca' && e.path) && l.some(e => e.link === 'bc' && e.path) && !l.some(e => e.link === 'ab' && e.path); })()`, time.Second)
	time.Sleep(300 * time.Millisecond) // the chart's cursor
	b.Eval(t, `window.forgelab.replay().t`, &got.T)
	if got.T != at {
		t.Errorf("the replay moved to %v s before its screenshot", got.T)
	}
	b.Screenshot(t, dir, "handover-replay.png", "#page-runs")
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(p, "\n"))
	}
}

// startServe runs `forgelab serve --open` on a free loopback port with a
// token until the test ends; it returns the page's address (with
// #token=...) and the listen address.
func startServe(t *testing.T, stateDir string) (page, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("ui-e2e-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "--state-dir", stateDir, "serve", "--listen", addr, "--token-file", tokenFile, "--open")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("forgelab serve after SIGTERM: %v\n%s", err, lastN(stderr.String(), 20))
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("forgelab serve still runs 10 s after SIGTERM\n%s", lastN(stderr.String(), 20))
		}
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case page = <-line:
	case <-time.After(30 * time.Second):
		t.Fatalf("forgelab serve --open printed no address in 30 s\n%s", stderr.String())
	}
	if !strings.HasPrefix(page, "http://"+addr+"/#token=") {
		t.Fatalf("forgelab serve --open printed %q, want http://%s/#token=...", page, addr)
	}
	return page, addr
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, body)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// checkServeScenario starts a scenario file next to the lab file through
// serve's API, sees it play (and a second start refused), stops it, and
// finds its run folder closed and both calls in the lab's event log.
func checkServeScenario(t *testing.T, api, lab string) {
	var info struct {
		File string `json:"file"`
	}
	if r := forgelab(t, "inspect", "-o", "json", lab); r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || info.File == "" {
		t.Fatalf("forgelab inspect: %s %s", r.stdout, r.stderr)
	}
	scen := filepath.Join(filepath.Dir(info.File), "from-serve.toml")
	if err := os.WriteFile(scen, []byte("duration = \"5m\"\n\n[[event]]\nat = \"1s\"\ndo = \"marker\"\nlabel = \"started by serve\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	post := func(path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer ui-e2e-0123456789abcdef")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base := "/api/v1/labs/" + lab + "/scenario/"
	if code, body := post(base+"start", `{"scenario": "../from-serve.toml"}`); code != http.StatusBadRequest {
		t.Errorf("start of a path: %d %s, want 400", code, body)
	}
	code, body := post(base+"start", `{"scenario": "from-serve"}`)
	if code != http.StatusOK {
		t.Fatalf("start: %d %s", code, body)
	}
	stopped := false
	defer func() {
		if !stopped {
			post(base+"stop", `{}`)
		}
	}()
	var sc backend.ScenarioStatus
	if err := json.Unmarshal([]byte(body), &sc); err != nil || !sc.Running || sc.Name != "from-serve" {
		t.Errorf("start answered %s, want the scenario from-serve running", body)
	}
	if code, body := post(base+"start", `{"scenario": "from-serve"}`); code != http.StatusConflict {
		t.Errorf("a second start while it plays: %d %s, want 409", code, body)
	}
	var snap struct {
		Scenario backend.ScenarioStatus `json:"scenario"`
	}
	if err := getJSON(api+"/api/v1/labs/"+lab+"/snapshot", &snap); err != nil || !snap.Scenario.Running || snap.Scenario.Clock <= 0 {
		t.Errorf("snapshot while it plays: %+v, %v", snap.Scenario, err)
	}
	if code, body := post(base+"stop", `{}`); code != http.StatusOK {
		t.Fatalf("stop: %d %s", code, body)
	}
	stopped = true
	if err := getJSON(api+"/api/v1/labs/"+lab+"/snapshot", &snap); err != nil || snap.Scenario.Running {
		t.Errorf("snapshot after stop: %+v, %v", snap.Scenario, err)
	}
	if code, body := post(base+"stop", `{}`); code != http.StatusConflict {
		t.Errorf("stop with nothing playing: %d %s, want 409", code, body)
	}
	var rs []backend.RunSummary
	if err := getJSON(api+"/api/v1/runs", &rs); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rs, func(r backend.RunSummary) bool { return r.Lab == lab && r.Scenario == "from-serve" })
	if i < 0 || rs[i].End.IsZero() || rs[i].Status == "running" {
		t.Errorf("runs after stop: %+v; want from-serve's run on %s closed", rs, lab)
	}
	var evs []backend.Event
	for after := int64(0); ; {
		var page struct {
			Events []backend.Event `json:"events"`
			Next   int64           `json:"next"`
		}
		if err := getJSON(fmt.Sprintf("%s/api/v1/labs/%s/events?after=%d&limit=5000", api, lab, after), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			break
		}
		evs, after = append(evs, page.Events...), page.Next
	}
	// From serve's start on: the run putting the links back, then the stop
	// (logged once the runner has ended, with how it went).
	var seen []string
	for _, e := range evs {
		if e.Action == "run.start" || e.Action == "run.stop" || e.Action == "run.reset" {
			seen = append(seen, e.Source+" "+e.Action+" "+e.Result)
		}
	}
	if i := slices.Index(seen, "api run.start ok"); i < 0 || !slices.Equal(seen[i:], []string{"api run.start ok", "forgelab run.reset ok", "api run.stop ok"}) {
		t.Errorf("event log's runs: %v; want serve's start, the run's reset and serve's stop, in that order", seen)
	}
}

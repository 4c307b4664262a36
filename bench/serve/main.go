// Command serve-bench measures forgelab serve's web page on a large lab,
// next to its baseline in the same run: the 4-host demo lab, then a lab of
// 50 hosts and 100 links standing still, then the same lab with every host
// moving and one link's quality changing 10 times a second, each streamed
// to a headless Chromium at 10 Hz. For each it prints the page's frame
// times (does it stay interactive?), the JavaScript time per snapshot, and
// the CPU serve spends (this process: server, fake backend, lab changes).
//
// Run: go run ./bench/serve [-hosts 50 -links 100 -hz 10 -t 8]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"maps"
	"math"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
	"github.com/forgelab/forgelab/telemetry/backend/backendtest"
	"github.com/forgelab/forgelab/telemetry/serve"
)

func main() {
	hosts := flag.Int("hosts", 50, "hosts in the large lab")
	links := flag.Int("links", 100, "links in the large lab")
	hz := flag.Int("hz", 10, "stream updates per second (and lab changes per second)")
	secs := flag.Int("t", 8, "seconds to measure each case")
	flag.Parse()
	if err := run(*hosts, *links, *hz, time.Duration(*secs)*time.Second); err != nil {
		log.Fatalf("serve bench: %v", err)
	}
}

func run(nHosts, nLinks, hz int, d time.Duration) error {
	path, err := exec.LookPath("chromium")
	if err != nil {
		return fmt.Errorf("chromium is missing: apt-get install chromium")
	}
	f := backendtest.New()
	big := backendtest.LargeTopology("big", nHosts, nLinks)
	f.AddLab(big)
	interval := time.Second / time.Duration(hz)
	s, err := serve.New(f, serve.Config{Listen: "127.0.0.1:0", Interval: interval})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(s)
	defer func() { srv.CloseClientConnections(); srv.Close() }()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 900), chromedp.Flag("use-angle", "swiftshader"), chromedp.Flag("enable-unsafe-swiftshader", true), chromedp.Flag("disable-accelerated-2d-canvas", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 3*d+3*time.Minute)
	defer cancelT()

	fmt.Printf("stream at %d Hz, %v per case, window 1400x900, software rendering\n", hz, d)
	fmt.Println("case                          | snapshots/s | frames/s | frame p50 | p95    | max     | >50 ms | JS/snapshot | serve CPU")
	cases := []struct {
		name   string
		lab    string
		topo   backend.Topology
		moving bool
	}{
		{"demo lab (4 hosts, 4 links)", "demo", backendtest.DemoTopology("demo"), false},
		{fmt.Sprintf("%d hosts, %d links, still", nHosts, nLinks), "big", big, false},
		{fmt.Sprintf("%d hosts, %d links, moving", nHosts, nLinks), "big", big, true},
	}
	for _, c := range cases {
		if err := measure(ctx, srv.URL, f, c.name, c.lab, c.topo, c.moving, interval, d); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func measure(ctx context.Context, url string, f *backendtest.Fake, name, lab string, topo backend.Topology, moving bool, interval, d time.Duration) error {
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/?lab="+lab)); err != nil {
		return err
	}
	if err := waitReady(ctx, lab); err != nil {
		return err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		if !moving {
			return
		}
		// Every host drifts; one link's quality changes per tick.
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for j, h := range topo.Hosts {
				p := *h.Position
				a := float64(i)/20 + float64(j)
				f.Move(lab, h.Name, [3]float64{p[0] + 10*math.Cos(a), p[1] + 10*math.Sin(a), 0})
			}
			l := topo.Links[i%len(topo.Links)]
			f.SetQuality(lab, l.Name, "", netfabric.Impairment{Loss: float64(i % 30), Delay: time.Duration(i%50) * time.Millisecond})
		}
	}()
	// Frame times: requestAnimationFrame deltas while the stream runs; a
	// frame over 50 ms is one a person notices.
	const start = `window.__frames = []; for (const k in window.forgelab.timing) delete window.forgelab.timing[k];
		window.__snaps = window.forgelab.snapshots;
		(function f(t0) { requestAnimationFrame((t) => { window.__frames.push(t - t0); f(t); }); })(performance.now()); true`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](start)); err != nil {
		return err
	}
	cpu0, t0 := cpuSeconds(), time.Now()
	time.Sleep(d)
	cpu1, t1 := cpuSeconds(), time.Now()
	type result struct {
		Frames []float64          `json:"frames"`
		Snaps  int                `json:"snaps"`
		Timing map[string]float64 `json:"timing"`
	}
	r, err := chromedp.Run(ctx, chromedp.Evaluate[result](`({frames: window.__frames.slice(1), snaps: window.forgelab.snapshots - window.__snaps, timing: window.forgelab.timing})`))
	if err != nil {
		return err
	}
	close(stop)
	<-done

	secs := t1.Sub(t0).Seconds()
	fr := r.Frames
	if len(fr) == 0 {
		return fmt.Errorf("no frames drawn")
	}
	slices.Sort(fr)
	q := func(p float64) float64 { return fr[int(p*float64(len(fr)-1))] }
	slow := 0
	for _, x := range fr {
		if x > 50 {
			slow++
		}
	}
	js := 0.0
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.Timing)) {
		js += r.Timing[k]
		parts = append(parts, fmt.Sprintf("%s %.1f", k, r.Timing[k]/float64(max(r.Snaps, 1))))
	}
	fmt.Printf("%-29s | %11.1f | %8.1f | %6.1f ms | %6.1f | %7.1f | %5.1f%% | %8.1f ms | %5.1f%% of a core\n",
		name, float64(r.Snaps)/secs, float64(len(fr))/secs, q(0.5), q(0.95), fr[len(fr)-1],
		100*float64(slow)/float64(len(fr)), js/float64(max(r.Snaps, 1)), 100*(cpu1-cpu0)/secs)
	fmt.Printf("%-29s   JS per snapshot (ms): %s\n", "", strings.Join(parts, ", "))
	return nil
}

func waitReady(ctx context.Context, lab string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`!!(window.forgelab && window.forgelab.ready && window.forgelab.lab === %q && window.forgelab.snapshots > 5)`, lab)))
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the page did not show lab %s within 30 s", lab)
}

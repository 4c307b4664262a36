package provision

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgelab/forgelab/provision/coord"
)

func TestWorkloadIntegration(t *testing.T) {
	ln := newLabNet(t)
	host := ln.addHost("wl", "")
	c := host.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := t.TempDir()

	w := Workload{Name: "alice", WorkDir: "/tmp", Env: map[string]string{"RATE": "1.5"}, Command: `
echo "warming up"
for i in 1 2 3; do
	printf '{"i": %d, "rate": %s, "host": "%s"}\n' $i "$RATE" "$(hostname)"
	sleep 0.2
done
echo "done" >&2
exit 3`}
	res, err := RunWorkload(ctx, c, w, out)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || res.TimedOut || len(res.Metrics) != 3 {
		t.Fatalf("result %+v", res)
	}
	if res.Metrics[2].Values["i"] != float64(3) || res.Metrics[0].Values["rate"] != 1.5 {
		t.Fatalf("metrics %+v", res.Metrics)
	}
	if d := res.Metrics[2].Time.Sub(res.Metrics[0].Time); d < 300*time.Millisecond {
		t.Fatalf("timestamps are not arrival times: %s apart", d)
	}
	stdout, _ := os.ReadFile(res.Stdout)
	stderr, _ := os.ReadFile(res.Stderr)
	metrics, _ := os.ReadFile(res.MetricsFile)
	if !strings.HasPrefix(string(stdout), "warming up\n{\"i\": 1") || string(stderr) != "done\n" || strings.Count(string(metrics), "\n") != 3 {
		t.Fatalf("files: stdout %q stderr %q metrics %q", stdout, stderr, metrics)
	}

	// A timeout ends the workload and everything it started.
	start := time.Now()
	res, err = RunWorkload(ctx, c, Workload{Name: "slow", Command: "sleep 301 & sleep 302; wait", Timeout: time.Second}, out)
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || time.Since(start) > 5*time.Second {
		t.Fatalf("timeout: %+v after %s", res, time.Since(start))
	}
	time.Sleep(200 * time.Millisecond)
	if got := sh(t, c, "ps -eo args | grep -c '^sleep 30[12]' || true"); strings.TrimSpace(got) != "0" {
		t.Fatal("workload processes survived its timeout")
	}

	// So does cancelling ctx (Ctrl-C in forgelab run).
	cctx, ccancel := context.WithTimeout(ctx, time.Second)
	defer ccancel()
	_, err = RunWorkload(cctx, c, Workload{Name: "cancelled", Command: "echo started >&2; sleep 303 & sleep 304; wait"}, out)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("cancelled workload: %v", err)
	}
	if got := sh(t, c, "ps -eo args | grep -c '^sleep 30[34]' || true"); strings.TrimSpace(got) != "0" {
		t.Fatal("workload processes survived cancellation")
	}
	if got, _ := os.ReadFile(out + "/cancelled.stderr"); string(got) != "started\n" {
		t.Fatalf("stderr %q: the process group announcement must not be in it", got)
	}
}

// Two hosts meet at a barrier of the coordination service, through curl
// over SSH, on the management network.
func TestCoordBarrierIntegration(t *testing.T) {
	ln := newLabNet(t)
	a, b := ln.addHost("a", ""), ln.addHost("b", "")
	ca, cb := a.connect(t), b.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	lis, err := net.Listen("tcp", ln.gw+":0")
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stop := context.WithCancel(ctx)
	defer stop()
	const token = "5ecre7"
	go coord.New(token, coord.Limits{}).Serve(srvCtx, lis)
	// curl sends the token in the URL as Basic authentication.
	env := map[string]string{"FORGELAB_COORD": coord.URL(lis.Addr().String(), token)}

	// Host a announces itself; host b waits for it with a long poll.
	var wg sync.WaitGroup
	var bGot WorkloadResult
	var bErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		bGot, bErr = RunWorkload(ctx, cb, Workload{Name: "get", Env: env,
			Command: `curl -fsS "$FORGELAB_COORD/kv/addr/a?wait=30s"`}, t.TempDir())
	}()
	time.Sleep(300 * time.Millisecond)
	if res, err := RunWorkload(ctx, ca, Workload{Name: "put", Env: env,
		Command: `curl -fsS -X PUT --data-binary "$(hostname -I | cut -d' ' -f1)" "$FORGELAB_COORD/kv/addr/a"`}, t.TempDir()); err != nil || res.ExitCode != 0 {
		t.Fatalf("put: %+v %v", res, err)
	}
	wg.Wait()
	if bErr != nil || bGot.ExitCode != 0 {
		t.Fatalf("get: %+v %v", bGot, bErr)
	}
	if got, _ := os.ReadFile(bGot.Stdout); string(got) != a.IP {
		t.Fatalf("b read %q, want %q", got, a.IP)
	}

	// The barrier: a arrives first and must wait for b.
	barrier := `curl -fsS -X POST "$FORGELAB_COORD/barrier/start?n=2&wait=30s" && printf '{"released": %s}\n' "$(date +%s.%N)"`
	var aRes WorkloadResult
	var aErr error
	aDone := make(chan struct{})
	go func() {
		defer close(aDone)
		aRes, aErr = RunWorkload(ctx, ca, Workload{Name: "barrier-a", Env: env, Command: barrier}, t.TempDir())
	}()
	select {
	case <-aDone:
		t.Fatalf("a passed the barrier alone: %+v %v", aRes, aErr)
	case <-time.After(time.Second):
	}
	bArrived := time.Now()
	bRes, err := RunWorkload(ctx, cb, Workload{Name: "barrier-b", Env: env, Command: barrier}, t.TempDir())
	<-aDone
	for name, r := range map[string]WorkloadResult{"a": aRes, "b": bRes} {
		if r.ExitCode != 0 || len(r.Metrics) != 1 {
			t.Fatalf("%s: %+v", name, r)
		}
	}
	if err != nil || aErr != nil {
		t.Fatal(err, aErr)
	}
	// Both were released once b arrived, within a second of each other.
	ra, rb := aRes.Metrics[0].Values["released"].(float64), bRes.Metrics[0].Values["released"].(float64)
	if diff := ra - rb; diff > 1 || diff < -1 {
		t.Fatalf("released %.3fs apart", diff)
	}
	if float64(bArrived.Unix())-ra > 1 {
		t.Fatalf("a released before b arrived")
	}

	// A barrier nobody else reaches: curl fails with the server's message.
	res, err := RunWorkload(ctx, ca, Workload{Name: "lonely", Env: env,
		Command: `curl -sS -f -X POST "$FORGELAB_COORD/barrier/lonely?n=2&wait=1s"`}, t.TempDir())
	if err != nil || res.ExitCode != 22 {
		t.Fatalf("lonely barrier: %+v %v", res, err)
	}
}

// Command demo is the program the quickstart lab deploys: a UDP sender and
// receiver that print what they did as one JSON object per second (the
// lines forgelab keeps as the workload's metrics), a tiny HTTP service,
// and a barrier, all meeting through the lab's coordination service
// ($FORGELAB_COORD).
//
//	demo recv  [--listen :9000] [--for 30s] [--signal receiver-up] [--until-signal sender-done]
//	demo send  --to HOST:9000 [--rate 500] [--size 256] [--for 20s] [--wait-signal receiver-up] [--done-signal sender-done]
//	demo serve [--listen 127.0.0.1:8080]       # GET /healthz, GET /stats
//	demo barrier [--raise S] [--await S] [--delay 2s] NAME N
//
// Build: go build -o examples/quickstart/bin/demo ./examples/quickstart
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/forgelab/forgelab/provision/coord"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "recv":
		err = recv(ctx, os.Args[2:])
	case "send":
		err = send(ctx, os.Args[2:])
	case "serve":
		err = serve(ctx, os.Args[2:])
	case "barrier":
		err = barrier(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: demo recv|send|serve|barrier [flags] (see the source)")
	os.Exit(2)
}

// emit prints one metrics line.
func emit(v map[string]any) {
	v["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func coordClient() (*coord.Client, error) {
	base := os.Getenv("FORGELAB_COORD")
	if base == "" {
		return nil, errors.New("FORGELAB_COORD is not set (forgelab sets it for services and workloads)")
	}
	return &coord.Client{Base: base}, nil
}

// Packets carry a sequence number and the send time (ns, the sender's
// clock: VM clocks are not synchronised, so the receiver does not use it).
const header = 16

func recv(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("recv", flag.ExitOnError)
	listen := fs.String("listen", ":9000", "UDP address")
	dur := fs.Duration("for", 30*time.Second, "how long to receive (0: until stopped)")
	sig := fs.String("signal", "", "coordination signal to raise once listening")
	until := fs.String("until-signal", "", "coordination signal that ends receiving (then 500 ms more for packets in flight)")
	fs.Parse(args)
	conn, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Fprintf(os.Stderr, "receiving on %s\n", conn.LocalAddr())
	if *sig != "" {
		c, err := coordClient()
		if err != nil {
			return err
		}
		if _, err := c.Signal(ctx, *sig); err != nil {
			return err
		}
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	if *until != "" {
		c, err := coordClient()
		if err != nil {
			return err
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			if _, err := c.WaitSignal(ctx, *until, 1, coord.MaxWait); err == nil {
				time.Sleep(500 * time.Millisecond)
			}
			cancel()
		}()
	}
	var packets, bytes, maxSeq atomic.Int64
	go func() {
		<-ctx.Done()
		conn.SetReadDeadline(time.Now())
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < header {
				continue
			}
			seq := int64(binary.BigEndian.Uint64(buf[:8]))
			packets.Add(1)
			bytes.Add(int64(n))
			for {
				m := maxSeq.Load()
				if seq <= m || maxSeq.CompareAndSwap(m, seq) {
					break
				}
			}
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastP, lastB int64
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			p := packets.Load()
			emit(map[string]any{"role": "receiver", "final": true, "packets": p, "bytes": bytes.Load(), "lost": max(0, maxSeq.Load()+1-p), "seconds": time.Since(start).Seconds()})
			return nil
		case <-tick.C:
			p, b := packets.Load(), bytes.Load()
			emit(map[string]any{"role": "receiver", "packets": p - lastP, "mbit_s": float64(b-lastB) * 8 / 1e6, "lost_total": max(0, maxSeq.Load()+1-p)})
			lastP, lastB = p, b
		}
	}
}

func send(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	to := fs.String("to", "", "receiver HOST:PORT")
	rate := fs.Int("rate", 500, "packets per second")
	size := fs.Int("size", 256, "bytes per packet")
	dur := fs.Duration("for", 20*time.Second, "how long to send")
	wait := fs.String("wait-signal", "", "coordination signal to wait for before sending")
	done := fs.String("done-signal", "", "coordination signal to raise when done")
	fs.Parse(args)
	if *to == "" || *rate <= 0 || *size < header {
		return errors.New("send: --to is required; --rate > 0; --size >= 16")
	}
	var c *coord.Client
	if *wait != "" || *done != "" {
		var err error
		if c, err = coordClient(); err != nil {
			return err
		}
	}
	if *wait != "" {
		start := time.Now()
		if _, err := c.WaitSignal(ctx, *wait, 1, 2*time.Minute); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "signal %s after %s\n", *wait, time.Since(start).Round(time.Millisecond))
	}
	conn, err := net.Dial("udp", *to)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	buf := make([]byte, *size)
	interval := time.Second / time.Duration(*rate)
	next := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var seq, sent, errs, lastSent int64
	for {
		select {
		case <-ctx.Done():
			emit(map[string]any{"role": "sender", "final": true, "sent": sent, "errors": errs})
			if *done != "" {
				if _, err := c.Signal(context.WithoutCancel(ctx), *done); err != nil {
					return err
				}
			}
			return nil
		case <-tick.C:
			emit(map[string]any{"role": "sender", "packets": sent - lastSent, "mbit_s": float64((sent-lastSent)*int64(*size)) * 8 / 1e6, "errors": errs})
			lastSent = sent
		default:
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(min(d, 50*time.Millisecond))
			continue
		}
		binary.BigEndian.PutUint64(buf[:8], uint64(seq))
		binary.BigEndian.PutUint64(buf[8:16], uint64(time.Now().UnixNano()))
		if _, err := conn.Write(buf); err != nil {
			errs++ // no receiver yet: ICMP unreachable
		} else {
			sent++
		}
		seq++
		next = next.Add(interval)
	}
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP address")
	fs.Parse(args)
	started := time.Now()
	var hits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		json.NewEncoder(w).Encode(map[string]any{"host": host, "uptime_s": time.Since(started).Seconds(), "hits": hits.Add(1)})
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "serving on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// barrier meets N-1 others at barrier NAME. --raise and --await order
// the arrivals (a signal raised just before arriving, one awaited before
// --delay and arriving), so a test knows who waits for whom.
func barrier(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("barrier", flag.ExitOnError)
	wait := fs.Duration("wait", 2*time.Minute, "give up after")
	raise := fs.String("raise", "", "signal to raise just before arriving")
	await := fs.String("await", "", "signal to wait for before arriving")
	delay := fs.Duration("delay", 0, "sleep before arriving (after --await)")
	fs.Parse(args)
	if fs.NArg() != 2 {
		return errors.New("usage: demo barrier [--raise S] [--await S] [--delay D] NAME N")
	}
	var n int
	if _, err := fmt.Sscanf(fs.Arg(1), "%d", &n); err != nil || n < 1 {
		return fmt.Errorf("barrier: N %q is not a positive number", fs.Arg(1))
	}
	c, err := coordClient()
	if err != nil {
		return err
	}
	if *await != "" {
		if _, err := c.WaitSignal(ctx, *await, 1, *wait); err != nil {
			return err
		}
	}
	time.Sleep(*delay)
	if *raise != "" {
		if _, err := c.Signal(ctx, *raise); err != nil {
			return err
		}
	}
	arrived := time.Now()
	if err := c.Barrier(ctx, fs.Arg(0), n, *wait); err != nil {
		return err
	}
	host, _ := os.Hostname()
	emit(map[string]any{"barrier": fs.Arg(0), "n": n, "host": host, "waited_ms": time.Since(arrived).Milliseconds()})
	return nil
}

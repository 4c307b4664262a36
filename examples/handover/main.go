// Command handover is the conversation of the handover demo: Alice sends
// numbered UDP packets to Bob's node address at a steady rate, Bob echoes
// each one back, and both print one JSON line per interval (the lines
// forgelab keeps as the workloads' metrics):
//
//	alice: sent, delivered (echoes back), delivery (0-1), lost, rtt_p50_ms,
//	       rtt_p99_ms, and the route to Bob right now (dev, via, to: Bob's
//	       address; forgelab serve draws the path from these three)
//	bob:   received, from (the address the packets came from)
//
// Round trips are measured on Alice's clock alone (VM clocks are not
// synchronised). A packet counts as delivered when its echo arrives within
// the echo timeout.
//
//	handover bob   [--listen :9000] [--for 5m]
//	handover alice --to ADDR:9000 [--from ADDR] [--rate 200] [--size 200] [--interval 1s] [--for 60s] [--timeout 1s]
//	handover report RUN_DIR...   (on this machine: what happened in each run, side by side; see package phases)
//
// Build: CGO_ENABLED=0 go build -o examples/handover/bin/handover ./examples/handover
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/forgelab/forgelab/examples/handover/phases"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "alice":
		err = alice(ctx, os.Args[2:])
	case "bob":
		err = bob(ctx, os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		usage()
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(os.Stderr, "handover:", err)
		os.Exit(1)
	}
}

func report(dirs []string) error {
	var ss []phases.Summary
	for _, d := range dirs {
		s, err := phases.Read(d)
		if err != nil {
			return err
		}
		ss = append(ss, s)
	}
	phases.Print(os.Stdout, ss)
	return nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: handover alice|bob|report [flags] (see the source)")
	os.Exit(2)
}

func emit(v map[string]any) {
	v["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// A packet: sequence number, Alice's send time (ns), padding.
const header = 16

func bob(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bob", flag.ExitOnError)
	listen := fs.String("listen", ":9000", "UDP address to listen on")
	dur := fs.Duration("for", 5*time.Minute, "stop after this long")
	interval := fs.Duration("interval", time.Second, "report interval")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	conn, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	var mu sync.Mutex
	received, from := 0, ""
	go func() {
		t := time.NewTicker(*interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				mu.Lock()
				emit(map[string]any{"role": "bob", "received": received, "from": from})
				received = 0
				mu.Unlock()
			}
		}
	}()
	buf := make([]byte, 65536)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			return ctx.Err()
		}
		if n < header {
			continue
		}
		conn.WriteTo(buf[:n], addr) // the echo
		mu.Lock()
		received++
		if ua, ok := addr.(*net.UDPAddr); ok {
			from = ua.IP.String()
		}
		mu.Unlock()
	}
}

func alice(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("alice", flag.ExitOnError)
	to := fs.String("to", "", "Bob's address, HOST:PORT")
	from := fs.String("from", "", "send from this address (Alice's node address: Bob's echoes then follow the route to it, not to the first link's address)")
	rate := fs.Int("rate", 200, "packets per second")
	size := fs.Int("size", 200, "packet size in bytes")
	interval := fs.Duration("interval", time.Second, "report interval")
	dur := fs.Duration("for", 60*time.Second, "send for this long")
	timeout := fs.Duration("timeout", time.Second, "an echo later than this counts as lost")
	fs.Parse(args)
	if *to == "" || *rate <= 0 || *size < header {
		return errors.New("alice: --to HOST:PORT, --rate > 0 and --size >= 16 are needed")
	}
	raddr, err := net.ResolveUDPAddr("udp", *to)
	if err != nil {
		return err
	}
	var laddr *net.UDPAddr
	if *from != "" {
		if laddr, err = net.ResolveUDPAddr("udp", net.JoinHostPort(*from, "0")); err != nil {
			return err
		}
	}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *dur+*timeout)
	defer cancel()
	context.AfterFunc(ctx, func() { conn.Close() })

	var mu sync.Mutex
	sentAt := map[uint64]time.Time{} // outstanding
	var rtts []float64
	delivered := 0
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return
				}
				// An ICMP error for an earlier packet (Bob not listening
				// yet: "connection refused") is reported once on a
				// connected socket; the echoes after it still come.
				continue
			}
			if n < header {
				continue
			}
			seq := binary.BigEndian.Uint64(buf[0:8])
			now := time.Now()
			mu.Lock()
			if t, ok := sentAt[seq]; ok {
				delete(sentAt, seq)
				if rtt := now.Sub(t); rtt <= *timeout {
					delivered++
					rtts = append(rtts, float64(rtt)/1e6)
				}
			}
			mu.Unlock()
		}
	}()

	pkt := make([]byte, *size)
	gap := time.Second / time.Duration(*rate)
	send := time.NewTicker(gap)
	defer send.Stop()
	report := time.NewTicker(*interval)
	defer report.Stop()
	stopSending := time.After(*dur)
	var seq uint64
	sent, sending := 0, true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-stopSending:
			sending = false
		case <-send.C:
			if !sending {
				continue
			}
			seq++
			binary.BigEndian.PutUint64(pkt[0:8], seq)
			now := time.Now()
			binary.BigEndian.PutUint64(pkt[8:16], uint64(now.UnixNano()))
			mu.Lock()
			sentAt[seq] = now
			mu.Unlock()
			if _, err := conn.Write(pkt); err == nil || isUnreachable(err) {
				sent++
			}
		case <-report.C:
			// Packets older than the timeout are lost; the rest are
			// still in flight and count in the next interval.
			mu.Lock()
			lost := 0
			cutoff := time.Now().Add(-*timeout)
			for s, t := range sentAt {
				if t.Before(cutoff) {
					delete(sentAt, s)
					lost++
				}
			}
			d, r := delivered, rtts
			delivered, rtts = 0, nil
			mu.Unlock()
			dev, via := route(raddr.IP)
			line := map[string]any{"role": "alice", "sent": sent, "delivered": d, "lost": lost, "dev": dev, "via": via, "to": raddr.IP.String()}
			if d+lost > 0 {
				line["delivery"] = float64(d) / float64(d+lost)
			}
			if len(r) > 0 {
				line["rtt_p50_ms"] = percentile(r, 0.5)
				line["rtt_p99_ms"] = percentile(r, 0.99)
			}
			emit(line)
			sent = 0
			if !sending && len(sentAt) == 0 {
				return nil
			}
		}
	}
}

// isUnreachable: with no route to Bob a send fails at once; the packet
// still counts as sent (and lost), as on a network that drops it.
func isUnreachable(err error) bool {
	return errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ECONNREFUSED)
}

func percentile(xs []float64, p float64) float64 {
	slices.Sort(xs)
	i := int(math.Ceil(p*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// route is the kernel's route to ip right now: the interface and the next
// hop ("" when direct), from iproute2's JSON.
func route(ip net.IP) (dev, via string) {
	out, err := exec.Command("ip", "-j", "route", "get", ip.String()).Output()
	if err != nil {
		return "", ""
	}
	var rs []struct {
		Dev     string `json:"dev"`
		Gateway string `json:"gateway"`
	}
	if json.Unmarshal(out, &rs) != nil || len(rs) == 0 {
		return "", ""
	}
	return rs[0].Dev, rs[0].Gateway
}

// Command transport is the software under test of the bench example
// (examples/transport-bench.toml): a reliable transport over UDP
// (windowed ARQ with selective acks, arq.go), benchmarked three ways
// against TCP on the same link:
//
//	transport serve   -listen :9100                 the receiver (a sink), a service on b
//	transport bench   -to B:9100 -bytes 4MB         native mode: its own benchmark, the transport as a library
//	transport gateway -listen 127.0.0.1:9200 -to B:9100
//	                                                carries each TCP stream it accepts over the transport
//	transport gen     -to 127.0.0.1:9200 -bytes 4MB external mode: a traffic generator feeding the gateway
//	iperf3 -c B -n 4M -J | transport iperf-json     reference mode: TCP measured by iperf3, as one JSON line
//
// bench, gen and iperf-json print one JSON line: goodput_mbps (and
// retransmits, seconds, bytes). -slow 0.2 on bench and gateway makes every
// transfer take 1/(1-0.2) as long: a deliberately regressed build B.
//
// Build: CGO_ENABLED=0 go build -o examples/transport/bin/transport ./examples/transport
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: transport serve|bench|gateway|gen|iperf-json [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = serve(args)
	case "bench":
		err = benchCmd(args)
	case "gateway":
		err = gateway(args)
	case "gen":
		err = gen(args)
	case "iperf-json":
		err = iperfJSON(os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q: use serve, bench, gateway, gen or iperf-json", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "transport:", err)
		os.Exit(1)
	}
}

// size reads "4MB", "512kB" or a plain number of bytes.
func size(s string) (int, error) {
	mult := 1
	for _, u := range []struct {
		suffix string
		m      int
	}{{"MB", 1 << 20}, {"kB", 1 << 10}, {"KB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: give bytes, e.g. 4MB", s)
	}
	return n * mult, nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", ":9100", "UDP address")
	fs.Parse(args)
	addr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		return err
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return err
	}
	conn.SetReadBuffer(4 << 20)
	return Serve(conn)
}

func dial(to string) (*net.UDPConn, error) {
	addr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, addr)
	if err == nil {
		conn.SetReadBuffer(4 << 20)
	}
	return conn, err
}

type result struct {
	GoodputMbps float64 `json:"goodput_mbps"`
	Retransmits int     `json:"retransmits"`
	Seconds     float64 `json:"seconds"`
	Bytes       int64   `json:"bytes"`
}

func print(r result) error { return json.NewEncoder(os.Stdout).Encode(r) }

func benchCmd(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	to := fs.String("to", "", "receiver UDP address (transport serve)")
	bytes := fs.String("bytes", "4MB", "how much to send")
	window := fs.Int("window", 64, "packets in flight")
	slow := fs.Float64("slow", 0, "make every transfer take 1/(1-slow) as long (0.2: 20 % less goodput), a regressed build")
	fs.Parse(args)
	n, err := size(*bytes)
	if err != nil {
		return err
	}
	conn, err := dial(*to)
	if err != nil {
		return err
	}
	defer conn.Close()
	st, err := Send(conn, rand.Uint32(), make([]byte, n), Options{Window: *window, Slow: *slow})
	if err != nil {
		return err
	}
	return print(result{GoodputMbps: float64(st.Bytes) * 8 / st.Elapsed.Seconds() / 1e6, Retransmits: st.Retransmits, Seconds: st.Elapsed.Seconds(), Bytes: st.Bytes})
}

// gateway carries each TCP stream it accepts over the transport: it reads
// the stream to its end, sends it, and answers "ok" when the receiver has
// all of it (store and forward, enough for a benchmark).
func gateway(args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9200", "TCP address")
	to := fs.String("to", "", "receiver UDP address (transport serve)")
	window := fs.Int("window", 64, "packets in flight")
	slow := fs.Float64("slow", 0, "make every transfer take 1/(1-slow) as long (0.2: 20 % less goodput), a regressed build")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			data, err := io.ReadAll(c)
			if err != nil {
				fmt.Fprintln(os.Stderr, "gateway: read:", err)
				return
			}
			conn, err := dial(*to)
			if err != nil {
				fmt.Fprintln(os.Stderr, "gateway:", err)
				return
			}
			defer conn.Close()
			st, err := Send(conn, rand.Uint32(), data, Options{Window: *window, Slow: *slow})
			if err != nil {
				fmt.Fprintln(os.Stderr, "gateway: send:", err)
				return
			}
			fmt.Fprintf(c, "ok %d\n", st.Retransmits)
		}()
	}
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	to := fs.String("to", "127.0.0.1:9200", "gateway TCP address")
	bytes := fs.String("bytes", "4MB", "how much to send")
	fs.Parse(args)
	n, err := size(*bytes)
	if err != nil {
		return err
	}
	start := time.Now()
	c, err := net.Dial("tcp", *to)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, n)); err != nil {
		return err
	}
	c.(*net.TCPConn).CloseWrite()
	reply, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	var retrans int
	if _, err := fmt.Sscanf(string(reply), "ok %d", &retrans); err != nil {
		return fmt.Errorf("the gateway did not confirm delivery (said %q)", reply)
	}
	el := time.Since(start)
	return print(result{GoodputMbps: float64(n) * 8 / el.Seconds() / 1e6, Retransmits: retrans, Seconds: el.Seconds(), Bytes: int64(n)})
}

// iperfJSON turns iperf3's -J report (one JSON document) into one JSON
// line: the goodput the receiver saw, and the sender's TCP retransmits.
func iperfJSON(in io.Reader, out io.Writer) error {
	var rep struct {
		End struct {
			SumSent struct {
				Seconds     float64 `json:"seconds"`
				Bytes       int64   `json:"bytes"`
				Retransmits int     `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(in).Decode(&rep); err != nil {
		return fmt.Errorf("read iperf3 -J output: %w", err)
	}
	if rep.Error != "" {
		return fmt.Errorf("iperf3: %s", rep.Error)
	}
	s := rep.End.SumSent
	return json.NewEncoder(out).Encode(result{GoodputMbps: rep.End.SumReceived.BitsPerSecond / 1e6, Retransmits: s.Retransmits, Seconds: s.Seconds, Bytes: s.Bytes})
}

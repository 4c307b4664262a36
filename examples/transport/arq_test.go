package main

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"
)

// A transfer over loopback completes, in order, with every packet.
func TestSendLoopback(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go Serve(srv)
	conn, err := dial(srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data := make([]byte, 1<<20+17)
	st, err := Send(conn, 7, data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets != 874 || st.Bytes != int64(len(data)) {
		t.Errorf("packets %d bytes %d, want 874 and %d", st.Packets, st.Bytes, len(data))
	}
}

// -slow s stretches a transfer to 1/(1-s) of its time: 0.2 is 20 % less
// goodput.
func TestLinger(t *testing.T) {
	for _, c := range []struct {
		slow float64
		want time.Duration
	}{{0, 0}, {0.2, 250 * time.Millisecond}, {0.5, time.Second}, {-1, 0}, {1, 0}} {
		if got := linger(time.Second, c.slow); got != c.want {
			t.Errorf("linger(1s, %v) = %s, want %s", c.slow, got, c.want)
		}
	}
}

func TestIperfJSON(t *testing.T) {
	in := `{"start":{},"end":{"sum_sent":{"seconds":1.5,"bytes":4194304,"retransmits":3},"sum_received":{"bits_per_second":22369621.3}}}`
	var out bytes.Buffer
	if err := iperfJSON(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("%q: %v", out.String(), err)
	}
	if r.GoodputMbps < 22.36 || r.GoodputMbps > 22.38 || r.Retransmits != 3 || r.Bytes != 4194304 {
		t.Errorf("%+v", r)
	}
	if err := iperfJSON(strings.NewReader(`{"error":"unable to connect to server"}`), &out); err == nil || !strings.Contains(err.Error(), "unable to connect") {
		t.Errorf("iperf3 error: %v", err)
	}
}

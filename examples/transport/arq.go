package main

// A reliable transport over UDP: windowed ARQ with selective acks. The
// sender keeps up to Window packets in flight; the receiver acks every
// packet it gets with its sequence number and the next one it still
// needs in order; the sender resends a packet not acked within the
// retransmission timeout (twice the smoothed round trip, at least 10 ms).
// A FIN carries the packet count; the receiver answers FINACK once it has
// them all.
//
// Packets: type (1 byte), session (4), sequence or count (4), then for
// DATA the payload, for ACK the next in-order sequence (4).

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

const (
	pktData   = 1
	pktAck    = 2
	pktFin    = 3
	pktFinAck = 4
	header    = 9
	payload   = 1200
)

// Options tune a sender.
type Options struct {
	Window int // packets in flight; 0: 64
	// Slow makes every transfer take 1/(1-Slow) as long (0.2: 20 % less
	// goodput): the sender lingers Slow/(1-Slow) of the transfer's time
	// before it reports completion. A deliberately regressed build for
	// the bench example, slower by the same factor whatever the
	// bottleneck (link, window or CPU); idling during the transfer
	// instead would be absorbed by the link's queue when the link is the
	// bottleneck.
	Slow float64
}

// Stats is what a transfer did.
type Stats struct {
	Bytes       int64
	Packets     int
	Retransmits int
	Elapsed     time.Duration
}

type ack struct {
	seq, next uint32
	fin       bool
	at        time.Time
}

// Send carries data to the receiver at the other end of conn (a
// connected UDP socket) and returns when the receiver has all of it.
func Send(conn *net.UDPConn, session uint32, data []byte, o Options) (Stats, error) {
	if o.Window <= 0 {
		o.Window = 64
	}
	n := (len(data) + payload - 1) / payload
	st := Stats{Bytes: int64(len(data)), Packets: n}
	acks := make(chan ack, 8192)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			k, err := conn.Read(buf)
			select {
			case <-stop:
				return
			default:
			}
			if err != nil || k < header || binary.BigEndian.Uint32(buf[1:]) != session {
				continue
			}
			a := ack{seq: binary.BigEndian.Uint32(buf[5:]), at: time.Now()}
			switch buf[0] {
			case pktAck:
				if k >= header+4 {
					a.next = binary.BigEndian.Uint32(buf[9:])
				}
			case pktFinAck:
				a.fin = true
			default:
				continue
			}
			select {
			case acks <- a:
			default:
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	start := time.Now()
	pkt := make([]byte, header+payload)
	sentAt := make([]time.Time, n)
	resent := make([]bool, n)
	acked := make([]bool, n)
	base, next, inflight := 0, 0, 0
	srtt := 20 * time.Millisecond
	rto := func() time.Duration { return max(10*time.Millisecond, 2*srtt) }
	send := func(seq int) error {
		lo, hi := seq*payload, min((seq+1)*payload, len(data))
		pkt[0] = pktData
		binary.BigEndian.PutUint32(pkt[1:], session)
		binary.BigEndian.PutUint32(pkt[5:], uint32(seq))
		k := copy(pkt[header:], data[lo:hi])
		_, err := conn.Write(pkt[:header+k])
		sentAt[seq] = time.Now()
		return err
	}
	markAcked := func(seq int, at time.Time) {
		if seq < 0 || seq >= n || acked[seq] {
			return
		}
		acked[seq] = true
		inflight--
		if !resent[seq] {
			srtt = (7*srtt + at.Sub(sentAt[seq])) / 8
		}
	}
	handle := func(a ack) {
		markAcked(int(a.seq), a.at)
		for s := base; s < int(a.next) && s < n; s++ {
			markAcked(s, a.at)
		}
		for base < n && acked[base] {
			base++
		}
	}
	for base < n {
		for next < n && inflight < o.Window {
			if err := send(next); err != nil {
				return st, err
			}
			next++
			inflight++
		}
		timer := time.NewTimer(rto() / 2)
		select {
		case a := <-acks:
			handle(a)
		drain:
			for {
				select {
				case a := <-acks:
					handle(a)
				default:
					break drain
				}
			}
		case <-timer.C:
		}
		timer.Stop()
		now := time.Now()
		for s := base; s < next; s++ {
			if !acked[s] && now.Sub(sentAt[s]) > rto() {
				resent[s] = true
				st.Retransmits++
				if err := send(s); err != nil {
					return st, err
				}
			}
		}
	}
	// FIN until the receiver says it has everything.
	fin := make([]byte, header)
	fin[0] = pktFin
	binary.BigEndian.PutUint32(fin[1:], session)
	binary.BigEndian.PutUint32(fin[5:], uint32(n))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := conn.Write(fin); err != nil {
			return st, err
		}
		timer := time.NewTimer(rto())
	wait:
		for {
			select {
			case a := <-acks:
				if a.fin {
					timer.Stop()
					time.Sleep(linger(time.Since(start), o.Slow))
					st.Elapsed = time.Since(start)
					return st, nil
				}
			case <-timer.C:
				break wait
			}
		}
	}
	return st, errors.New("no FINACK from the receiver within 10s")
}

// linger is how long a transfer that took d waits at its end so that it
// takes 1/(1-slow) as long in all.
func linger(d time.Duration, slow float64) time.Duration {
	if slow <= 0 || slow >= 1 {
		return 0
	}
	return time.Duration(float64(d) * slow / (1 - slow))
}

// session is the receiver's state of one sender.
type session struct {
	next uint32
	have map[uint32]bool
	seen time.Time
}

// Serve receives on conn until it fails: every sender's data is taken in
// order and discarded (a sink), every packet acked.
func Serve(conn *net.UDPConn) error {
	sessions := map[string]*session{}
	buf := make([]byte, 2048)
	out := make([]byte, header+4)
	for {
		k, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			return err
		}
		if k < header {
			continue
		}
		sid := binary.BigEndian.Uint32(buf[1:])
		seq := binary.BigEndian.Uint32(buf[5:])
		key := from.String() + "/" + string(buf[1:5])
		s := sessions[key]
		if s == nil {
			if len(sessions) > 1000 {
				for k, old := range sessions {
					if time.Since(old.seen) > time.Minute {
						delete(sessions, k)
					}
				}
			}
			s = &session{have: map[uint32]bool{}}
			sessions[key] = s
		}
		s.seen = time.Now()
		binary.BigEndian.PutUint32(out[1:], sid)
		switch buf[0] {
		case pktData:
			if seq >= s.next {
				s.have[seq] = true
				for s.have[s.next] {
					delete(s.have, s.next)
					s.next++
				}
			}
			out[0] = pktAck
			binary.BigEndian.PutUint32(out[5:], seq)
			binary.BigEndian.PutUint32(out[9:], s.next)
			conn.WriteToUDP(out, from)
		case pktFin:
			if s.next >= seq {
				out[0] = pktFinAck
				binary.BigEndian.PutUint32(out[5:], seq)
				conn.WriteToUDP(out[:header], from)
			}
		}
	}
}

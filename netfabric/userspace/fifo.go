package userspace

// pkt is a frame (vnet header + Ethernet frame, in a pooled buffer)
// waiting in a delay line until its release time.
type pkt struct {
	b     []byte
	at    int64 // release time, engine nanoseconds
	pkts  int   // wire packets it stands for
	bytes int   // wire bytes
}

// fifo is a growable ring of packets. Release times never decrease from
// head to tail, so the head is always the next packet due: one timer per
// line suffices and no heap is needed.
type fifo struct {
	buf        []pkt
	head, size int
}

func (q *fifo) len() int { return q.size }

func (q *fifo) grow() {
	n := max(64, 2*len(q.buf))
	nb := make([]pkt, n)
	for i := 0; i < q.size; i++ {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
}

func (q *fifo) pushBack(p pkt) {
	if q.size == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.size)%len(q.buf)] = p
	q.size++
}

// pushFront puts p before everything queued: netem's reorder, a packet
// that overtakes the delayed ones.
func (q *fifo) pushFront(p pkt) {
	if q.size == len(q.buf) {
		q.grow()
	}
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = p
	q.size++
}

func (q *fifo) front() *pkt { return &q.buf[q.head] }

func (q *fifo) popFront() pkt {
	p := q.buf[q.head]
	q.buf[q.head] = pkt{}
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return p
}

package userspace

import "sync"

// maxFrame is the largest frame (with its vnet header) the engine takes:
// a 64 KiB GSO super-frame plus Ethernet, VLAN and vnet headers.
const maxFrame = 65536 + 64

// bufPool recycles frame buffers in two sizes, so a delay line full of
// packets does not churn the garbage collector.
type bufPool struct {
	small, big sync.Pool
}

const smallBuf = 2048

func newBufPool() *bufPool {
	p := &bufPool{}
	p.small.New = func() any { b := make([]byte, smallBuf); return &b }
	p.big.New = func() any { b := make([]byte, maxFrame); return &b }
	return p
}

// get returns a buffer of length n (n <= maxFrame).
func (p *bufPool) get(n int) []byte {
	if n <= smallBuf {
		return (*p.small.Get().(*[]byte))[:n]
	}
	return (*p.big.Get().(*[]byte))[:n]
}

func (p *bufPool) put(b []byte) {
	b = b[:cap(b)]
	switch cap(b) {
	case smallBuf:
		p.small.Put(&b)
	case maxFrame:
		p.big.Put(&b)
	}
}

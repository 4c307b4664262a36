package userspace

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchConn is a datagram socket read and written many frames per system
// call (recvmmsg/sendmmsg), waiting through Go's poller rather than a
// blocked thread per socket.
type batchConn struct {
	name string
	f    *os.File // keeps the fd registered with the poller
	rc   syscall.RawConn

	// receive side, used only by the one reader goroutine
	rmsgs []unix.Mmsghdr
	riov  []unix.Iovec
}

func newBatchConn(name string, fd int, batch int) (*batchConn, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: set non-blocking: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &batchConn{
		name:  name,
		f:     f,
		rc:    rc,
		rmsgs: make([]unix.Mmsghdr, batch),
		riov:  make([]unix.Iovec, batch),
	}, nil
}

func (c *batchConn) Close() error { return c.f.Close() }

// readBatch fills bufs with up to len(bufs) datagrams, blocking until at
// least one arrives; lens gets their sizes. Datagrams longer than their
// buffer are cut (the caller sizes buffers for the largest frame).
func (c *batchConn) readBatch(bufs [][]byte, lens []int) (int, error) {
	n := min(len(bufs), len(c.rmsgs))
	for i := 0; i < n; i++ {
		c.riov[i].Base = &bufs[i][0]
		c.riov[i].SetLen(len(bufs[i]))
		c.rmsgs[i] = unix.Mmsghdr{}
		c.rmsgs[i].Hdr.Iov = &c.riov[i]
		c.rmsgs[i].Hdr.SetIovlen(1)
	}
	var got int
	var serr error
	err := c.rc.Read(func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rmsgs[0])), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false // wait until readable
		}
		if e != 0 {
			serr = e
			return true
		}
		got = int(r)
		return true
	})
	if err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("%s: recvmmsg: %w", c.name, serr)
	}
	for i := 0; i < got; i++ {
		lens[i] = min(int(c.rmsgs[i].Len), len(bufs[i]))
	}
	return got, nil
}

// sender writes batches of frames to a batchConn. Each goroutine that
// writes owns its sender (the message arrays are not shared).
type sender struct {
	c    *batchConn
	msgs []unix.Mmsghdr
	iov  []unix.Iovec
}

func (c *batchConn) newSender(batch int) *sender {
	return &sender{c: c, msgs: make([]unix.Mmsghdr, batch), iov: make([]unix.Iovec, batch)}
}

// writeBatch sends frames, waiting while the socket buffer is full. A
// frame the device refuses (queue full, link down, too big) is dropped, as
// a NIC would drop it, and reported to refused by its index.
func (s *sender) writeBatch(frames [][]byte, refused func(i int, err error)) error {
	base := 0
	for len(frames) > 0 {
		n := min(len(frames), len(s.msgs))
		for i := 0; i < n; i++ {
			s.iov[i].Base = &frames[i][0]
			s.iov[i].SetLen(len(frames[i]))
			s.msgs[i] = unix.Mmsghdr{}
			s.msgs[i].Hdr.Iov = &s.iov[i]
			s.msgs[i].Hdr.SetIovlen(1)
		}
		var sent int
		var serr error
		werr := s.c.rc.Write(func(fd uintptr) bool {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN || e == unix.EINTR {
				return false // socket buffer full: wait until writable
			}
			if e != 0 {
				serr = e
				return true
			}
			sent = int(r)
			return true
		})
		if werr != nil {
			return werr
		}
		if serr != nil {
			if isFatal(serr) {
				return fmt.Errorf("%s: sendmmsg: %w", s.c.name, serr)
			}
			// sendmmsg stops at the first failing frame: drop it and go on.
			refused(base, serr)
			sent = 1
		}
		frames = frames[sent:]
		base += sent
	}
	return nil
}

// isFatal tells a broken socket from a frame the device would not take.
func isFatal(err error) bool {
	return errors.Is(err, unix.EBADF) || errors.Is(err, unix.ENOTSOCK) || errors.Is(err, unix.EFAULT)
}

package coord

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Listen binds one port on every address: prefer when it is free on all
// of them, else one the kernel picks on the first and the others take.
// The listeners are what the service then serves on (passed to the
// process that runs it), so no other program can take the port between
// a check and the bind. An unspecified address (0.0.0.0, ::) is refused:
// the service answers only where the lab's hosts reach it.
func Listen(addrs []netip.Addr, prefer int) ([]*net.TCPListener, int, error) {
	if len(addrs) == 0 {
		return nil, 0, errors.New("coordination service: no address to listen on")
	}
	for _, a := range addrs {
		if !a.IsValid() || a.IsUnspecified() {
			return nil, 0, fmt.Errorf("coordination service: will not listen on %v: give the address the lab's hosts reach", a)
		}
	}
	try := func(port int) ([]*net.TCPListener, int, error) {
		var lns []*net.TCPListener
		for _, a := range addrs {
			ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(port))))
			if err != nil {
				for _, l := range lns {
					l.Close()
				}
				return nil, 0, err
			}
			lns = append(lns, ln)
			if port == 0 {
				port = ln.Addr().(*net.TCPAddr).Port
			}
		}
		return lns, port, nil
	}
	if prefer > 0 {
		if lns, port, err := try(prefer); err == nil {
			return lns, port, nil
		}
	}
	var last error
	for range 20 { // the kernel's port may be taken on another address
		lns, port, err := try(0)
		if err == nil {
			return lns, port, nil
		}
		last = err
	}
	return nil, 0, fmt.Errorf("coordination service: no TCP port free on every one of %v: %w", addrs, last)
}

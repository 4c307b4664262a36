package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
	"libvirt.org/go/libvirt"
)

// ConsoleEscape is the byte that ends an interactive console session.
const ConsoleEscape = 0x1d // Ctrl-]

// Console attaches the terminal to a domain's serial console until the user
// types Ctrl-], the domain stops, or ctx ends. in is put in raw mode when
// it is a terminal.
func (c *Conn) Console(ctx context.Context, name string, in *os.File, out io.Writer) error {
	if c.raw == nil {
		return errors.New("no console: not connected to libvirt")
	}
	// Opening is bounded like every libvirt call; the session itself
	// lasts as long as the user wants.
	type opened struct {
		dom *libvirt.Domain
		st  *libvirt.Stream
	}
	o, err := boundedValue(ctx, c, "open console of "+name, func() (opened, error) {
		dom, err := c.raw.LookupDomainByName(name)
		if err != nil {
			return opened{}, fmt.Errorf("look up domain %s: %w", name, err)
		}
		st, err := c.raw.NewStream(0)
		if err != nil {
			dom.Free()
			return opened{}, fmt.Errorf("open stream: %w", err)
		}
		// FORCE takes the console from a stale session (a killed forgelab).
		if err := dom.OpenConsole("", st, libvirt.DOMAIN_CONSOLE_FORCE); err != nil {
			st.Free()
			dom.Free()
			return opened{}, fmt.Errorf("open console of %s: %w", name, err)
		}
		return opened{dom, st}, nil
	})
	if err != nil {
		return err
	}
	dom, st := o.dom, o.st
	defer dom.Free()
	defer st.Free()
	if term.IsTerminal(int(in.Fd())) {
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("raw terminal: %w", err)
		}
		defer term.Restore(int(in.Fd()), old)
	}
	done := make(chan error, 2)
	go func() { // console -> terminal
		buf := make([]byte, 4096)
		for {
			n, err := st.Recv(buf)
			if n > 0 {
				if _, werr := out.Write(buf[:n]); werr != nil {
					done <- werr
					return
				}
			}
			if err != nil || n == 0 {
				done <- err
				return
			}
		}
	}()
	go func() { // terminal -> console, watching for the escape byte
		buf := make([]byte, 1024)
		for {
			n, err := in.Read(buf)
			for i := 0; i < n; i++ {
				if buf[i] == ConsoleEscape {
					if i > 0 {
						st.Send(buf[:i])
					}
					done <- nil
					return
				}
			}
			if n > 0 {
				if _, err := st.Send(buf[:n]); err != nil {
					done <- err
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	st.Abort()
	return err
}

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
	dom, err := c.raw.LookupDomainByName(name)
	if err != nil {
		return fmt.Errorf("look up domain %s: %w", name, err)
	}
	defer dom.Free()
	st, err := c.raw.NewStream(0)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	defer st.Free()
	// FORCE takes the console from a stale session (a killed forgelab).
	if err := dom.OpenConsole("", st, libvirt.DOMAIN_CONSOLE_FORCE); err != nil {
		return fmt.Errorf("open console of %s: %w", name, err)
	}
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

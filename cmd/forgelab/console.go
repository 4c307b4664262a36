package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs"
)

func consoleCommand() *cli.Command {
	return &cli.Command{
		Name:      "console",
		Usage:     "attach to a host's serial console (Ctrl-] leaves), or print its log",
		ArgsUsage: "LAB HOST",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "log", Usage: "print the serial log instead of attaching"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "with --log: keep printing new output"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, "LAB HOST"); err != nil {
				return err
			}
			s := store(c)
			st, err := s.Load(c.Args().Get(0))
			if err != nil {
				return err
			}
			host := c.Args().Get(1)
			h := st.Plan.Host(host)
			if h == nil {
				return fmt.Errorf("lab %s has no host %q", st.Lab, host)
			}
			dir := s.LabDir(st.Lab)
			if c.Bool("log") {
				return printLog(c, filepath.Join(dir, host+"-serial.log"), c.Bool("follow"))
			}
			conn, err := hypervisor.Connect(c.String("libvirt-uri"))
			if err != nil {
				return err
			}
			defer conn.Close()
			fmt.Fprintf(os.Stderr, "Connected to the serial console of %s/%s. Escape: Ctrl-]\nLogin: %s, password in %s (press Enter for a prompt)\r\n",
				st.Lab, host, st.User, filepath.Join(dir, labs.PasswordFile))
			err = conn.Console(c.Context, h.Domain, os.Stdin, os.Stdout)
			fmt.Fprintln(os.Stderr, "\r\nconsole closed")
			return err
		},
	}
}

func printLog(c *cli.Context, path string, follow bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("serial log: %w", err)
	}
	defer f.Close()
	for {
		if _, err := io.Copy(os.Stdout, f); err != nil {
			return err
		}
		if !follow {
			return nil
		}
		select {
		case <-c.Context.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

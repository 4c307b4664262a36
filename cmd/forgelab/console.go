package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

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
			st, err := store(c).Load(c.Args().Get(0))
			if err != nil {
				return err
			}
			host := c.Args().Get(1)
			if c.Bool("log") {
				path, err := (&labs.Manager{Store: store(c)}).SerialLog(st, host)
				if err != nil {
					return err
				}
				return printLog(c, path, c.Bool("follow"))
			}
			m, done, err := manager(c)
			if err != nil {
				return err
			}
			defer done()
			fmt.Fprintf(os.Stderr, "Connected to the serial console of %s/%s. Escape: Ctrl-]\nLogin: %s, password in %s (press Enter for a prompt)\r\n",
				st.Lab, host, st.User, m.ConsolePassword(st))
			err = m.Console(c.Context, st, host, os.Stdin, os.Stdout)
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

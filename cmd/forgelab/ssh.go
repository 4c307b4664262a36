package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/provision"
)

func sshCommand() *cli.Command {
	return &cli.Command{
		Name:      "ssh",
		Usage:     "log into a lab host (OpenSSH client with the lab's key and verified host key)",
		ArgsUsage: "LAB HOST [-- COMMAND...]",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, "LAB HOST [-- COMMAND...]"); err != nil {
				return err
			}
			s := store(c)
			st, err := s.Load(c.Args().Get(0))
			if err != nil {
				return err
			}
			args, err := (&labs.Manager{Store: s}).SSHArgs(st, c.Args().Get(1))
			if err != nil {
				return err
			}
			bin, err := exec.LookPath("ssh")
			if err != nil {
				return errors.New("no ssh client: apt-get install openssh-client (or use forgelab exec)")
			}
			args = append(append([]string{"ssh", "-o", "LogLevel=ERROR"}, args...), commandArgs(c)...)
			return syscall.Exec(bin, args, os.Environ())
		},
	}
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command on a lab host; its exit code becomes forgelab's",
		ArgsUsage: "LAB HOST -- COMMAND...",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 3, "LAB HOST -- COMMAND..."); err != nil {
				return err
			}
			s := store(c)
			st, err := s.Load(c.Args().Get(0))
			if err != nil {
				return err
			}
			cl, err := (&labs.Manager{Store: s}).Dial(c.Context, st, c.Args().Get(1))
			if err != nil {
				return err
			}
			defer cl.Close()
			code, err := cl.Run(c.Context, shellJoin(commandArgs(c)), os.Stdin, os.Stdout, os.Stderr)
			if err != nil {
				return err
			}
			if code != 0 {
				return cli.Exit("", code)
			}
			return nil
		},
	}
}

// commandArgs are the arguments after LAB HOST, without the "--" that
// separates them (urfave/cli keeps it once positional arguments began; a
// remote shell would take it for an option).
func commandArgs(c *cli.Context) []string {
	args := c.Args().Slice()[2:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	return args
}

// shellJoin keeps a single argument as the user typed it (so
// `exec lab a -- 'ping -c1 b | tail -1'` works) and quotes several.
func shellJoin(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	out := ""
	for i, a := range args {
		if i > 0 {
			out += " "
		}
		out += provision.ShellQuote(a)
	}
	return out
}

package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:  "logs",
		Usage: "show the logs of a host's services (all of them, or one), or of every host's services and workloads",
		Description: "With LAB alone, every host's services and every workload's output, each line prefixed with\n" +
			"its host and source; with -f, followed until Ctrl-C.",
		ArgsUsage: "[-f] [-n N] LAB [HOST [SERVICE]]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines until Ctrl-C"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Usage: "last lines to show (0: all); with LAB alone, of each source", Value: 100},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "[-f] [-n N] LAB [HOST [SERVICE]]"); err != nil {
				return err
			}
			m := &labs.Manager{Store: store(c)}
			if c.NArg() == 1 {
				return m.FollowLab(c.Context, c.Args().Get(0), c.Int("lines"), c.Bool("follow"), os.Stdout)
			}
			return m.Logs(c.Context, c.Args().Get(0), c.Args().Get(1), c.Args().Get(2), c.Int("lines"), c.Bool("follow"), os.Stdout)
		},
	}
}

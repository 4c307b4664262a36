package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show the logs of a host's services (all of them, or one)",
		ArgsUsage: "[-f] [-n N] LAB HOST [SERVICE]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines until Ctrl-C"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Usage: "last lines to show (0: all)", Value: 100},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, "[-f] [-n N] LAB HOST [SERVICE]"); err != nil {
				return err
			}
			m := &labs.Manager{Store: store(c)}
			return m.Logs(c.Context, c.Args().Get(0), c.Args().Get(1), c.Args().Get(2), c.Int("lines"), c.Bool("follow"), os.Stdout)
		},
	}
}

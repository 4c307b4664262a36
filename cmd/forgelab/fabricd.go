package main

import (
	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
)

// fabricdCommand is the userspace link fabric of one lab: create starts it
// detached, destroy stops it.
func fabricdCommand() *cli.Command {
	return &cli.Command{
		Name:   "fabricd",
		Usage:  "run a lab's userspace link fabric (started by create)",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Required: true},
			&cli.StringFlag{Name: "socket", Required: true},
		},
		Action: func(c *cli.Context) error {
			return labs.ServeFabric(c.Context, c.String("config"), c.String("socket"))
		},
	}
}

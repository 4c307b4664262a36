package main

import (
	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/netfabric/userspace"
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
			cfg, err := userspace.LoadConfig(c.String("config"))
			if err != nil {
				return err
			}
			return userspace.Serve(c.Context, cfg, c.String("socket"))
		},
	}
}

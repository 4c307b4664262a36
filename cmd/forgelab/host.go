package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs"
)

func hostCommand() *cli.Command {
	var subs []*cli.Command
	for _, a := range hypervisor.HostActions {
		a := a
		subs = append(subs, &cli.Command{
			Name:      string(a),
			Usage:     hostActionUsage[a],
			ArgsUsage: "LAB HOST",
			Action: func(c *cli.Context) error {
				if err := needArgs(c, 2, "LAB HOST"); err != nil {
					return err
				}
				m, done, err := manager(c)
				if err != nil {
					return err
				}
				defer done()
				host := c.Args().Get(1)
				if err := m.HostAction(c.Context, labs.SourceCLI, c.Args().Get(0), host, a); err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "host %s: %s done\n", host, a)
				return nil
			},
		})
	}
	return &cli.Command{Name: "host", Usage: "power and fault actions on a VM", Subcommands: subs}
}

var hostActionUsage = map[hypervisor.HostAction]string{
	hypervisor.ActionStop:   "power off (ACPI, forced after 30 s)",
	hypervisor.ActionStart:  "boot a stopped VM",
	hypervisor.ActionKill:   "pull the plug",
	hypervisor.ActionPause:  "freeze its vCPUs (it looks hung to its peers)",
	hypervisor.ActionResume: "thaw a paused VM",
	hypervisor.ActionReboot: "hard reset",
}

func nicCommand() *cli.Command {
	upDown := func(up bool) func(c *cli.Context) error {
		return func(c *cli.Context) error {
			if err := needArgs(c, 3, "LAB HOST LINK"); err != nil {
				return err
			}
			m, done, err := manager(c)
			if err != nil {
				return err
			}
			defer done()
			host, link := c.Args().Get(1), c.Args().Get(2)
			if err := m.SetNIC(c.Context, labs.SourceCLI, c.Args().Get(0), host, link, up); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s's NIC on %s %s\n", host, link, map[bool]string{true: "restored", false: "cut"}[up])
			return nil
		}
	}
	return &cli.Command{
		Name:  "nic",
		Usage: "cut or restore a VM's NIC carrier (the guest sees its link go down)",
		Subcommands: []*cli.Command{
			{Name: "down", Usage: "cut the carrier", ArgsUsage: "LAB HOST LINK", Action: upDown(false)},
			{Name: "up", Usage: "restore the carrier", ArgsUsage: "LAB HOST LINK", Action: upDown(true)},
		},
	}
}

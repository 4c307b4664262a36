package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/hypervisor"
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
				s := store(c)
				st, err := s.Load(c.Args().Get(0))
				if err != nil {
					return err
				}
				h := st.Plan.Host(c.Args().Get(1))
				if h == nil || h.Kind == "physical" {
					return fmt.Errorf("lab %s has no VM %q", st.Lab, c.Args().Get(1))
				}
				conn, err := hypervisor.Connect(c.String("libvirt-uri"))
				if err != nil {
					return err
				}
				defer conn.Close()
				if err := conn.Do(c.Context, h.Domain, a); err != nil {
					return err
				}
				s.LogEvent(st.Lab, "host %s %s", a, h.Name)
				fmt.Fprintf(os.Stderr, "host %s: %s done\n", h.Name, a)
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
			s := store(c)
			st, err := s.Load(c.Args().Get(0))
			if err != nil {
				return err
			}
			h := st.Plan.Host(c.Args().Get(1))
			if h == nil {
				return fmt.Errorf("lab %s has no host %q", st.Lab, c.Args().Get(1))
			}
			mac := ""
			for _, n := range h.NICs {
				if n.Link == c.Args().Get(2) {
					mac = n.MAC
				}
			}
			if mac == "" {
				return fmt.Errorf("host %s has no NIC on link %q", h.Name, c.Args().Get(2))
			}
			conn, err := hypervisor.Connect(c.String("libvirt-uri"))
			if err != nil {
				return err
			}
			defer conn.Close()
			if err := conn.SetNICLink(c.Context, h.Domain, mac, up); err != nil {
				return err
			}
			word := map[bool]string{true: "restored", false: "cut"}[up]
			s.LogEvent(st.Lab, "nic %s of %s on %s %s", mac, h.Name, c.Args().Get(2), word)
			fmt.Fprintf(os.Stderr, "%s's NIC on %s %s\n", h.Name, c.Args().Get(2), word)
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

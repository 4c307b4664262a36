package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a lab's hosts, addresses and links",
		ArgsUsage: "LAB",
		Flags:     []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "LAB"); err != nil {
				return err
			}
			m, done, err := manager(c)
			if err != nil {
				return err
			}
			defer done()
			info, err := m.Inspect(c.Args().First())
			if err != nil {
				return err
			}
			if c.String("output") == "json" {
				return printJSON(info)
			}
			printInfo(info)
			return nil
		},
	}
}

func printInfo(info *labs.Info) {
	fmt.Printf("lab %s (id %s, %s) from %s\n", info.Lab, info.ID, info.Phase, info.File)
	if info.Error != "" {
		fmt.Printf("error: %s\n", info.Error)
	}
	fmt.Printf("accelerator: %s (%s)\nmanagement network: %s; routing %s; login user %s; state in %s\n\n", info.Accel, info.AccelReason, info.Mgmt, info.Routing, info.User, info.StateDir)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HOST\tSTATE\tREADY\tMGMT\tNODE\tADDRESSES\tBOOT")
	for _, h := range info.Hosts {
		var addrs []string
		for _, n := range h.NICs {
			addrs = append(addrs, fmt.Sprintf("%s(%s)=%s", n.Name, n.Link, strings.Join(n.Addresses, ",")))
		}
		boot := ""
		if h.BootTime > 0 {
			boot = h.BootTime.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%s\t%s\t%s\n", h.Name, h.State, h.Ready, h.MgmtIP, h.Node4, strings.Join(addrs, " "), boot)
	}
	w.Flush()
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LINK\tENDPOINTS\tSUBNETS\tBRIDGE")
	for _, l := range info.Links {
		fmt.Fprintf(w, "%s\t%s\t%s %s\t%s\n", l.Name, strings.Join(l.Endpoints, ","), l.Subnet4, l.Subnet6, l.Bridge)
	}
	w.Flush()
	if len(info.Steps) > 0 {
		var steps []string
		for _, s := range info.Steps {
			steps = append(steps, fmt.Sprintf("%s %s", s.Name, s.Duration.Round(100*time.Millisecond)))
		}
		fmt.Printf("\ncreate steps: %s\n", strings.Join(steps, ", "))
	}
}

package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
)

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "list (and with --yes remove) forgelab objects no lab state accounts for",
		Description: "Finds every fl-prefixed libvirt domain and network, netdev (bridge, tap, veth, vxlan, ifb),\n" +
			"helper process of a lab directory without a readable state, and such lab directories.\n" +
			"An id is alive (left alone) when a lab with that id has a readable state in this state dir,\n" +
			"in a state dir of the machine's registry (every create adds its own), in a --also-state-dir,\n" +
			"or in the state dir its domains name. Labs of a forgelab that registers nothing look like\n" +
			"orphans: while such labs run, restrict gc with --id.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "yes", Usage: "remove what is found (default: only list)"},
			&cli.StringSliceFlag{Name: "id", Usage: "only these lab ids (4 hex digits, as in fl-<id>-...)"},
			&cli.StringSliceFlag{Name: "also-state-dir", Usage: "another state dir whose labs are alive"},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			m, done, err := manager(c)
			if err != nil {
				return err
			}
			defer done()
			rep, err := m.GC(c.Context, labs.GCOptions{IDs: c.StringSlice("id"), StateDirs: c.StringSlice("also-state-dir"), Remove: c.Bool("yes")})
			if err != nil {
				return err
			}
			if c.String("output") == "json" {
				return printJSON(rep)
			}
			return printGC(rep, c.Bool("yes"))
		},
	}
}

func printGC(rep *labs.GCReport, removed bool) error {
	if len(rep.Orphans) == 0 {
		fmt.Fprintf(os.Stderr, "no orphans (labs of state dirs %s are alive)\n", strings.Join(rep.StateDirs, ", "))
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tNAME\tNOTE\tRESULT")
	failed := 0
	for _, o := range rep.Orphans {
		res := "found"
		switch {
		case o.Error != "":
			res, failed = "failed: "+o.Error, failed+1
		case o.Removed:
			res = "removed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.ID, o.Kind, o.Name, o.Note, res)
	}
	tw.Flush()
	if !removed {
		fmt.Fprintln(os.Stderr, "nothing removed: run again with --yes (and --id ID to limit it) to remove these")
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d orphans could not be removed (see RESULT)", failed, len(rep.Orphans))
	}
	return nil
}

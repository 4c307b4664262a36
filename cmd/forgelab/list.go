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

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list labs",
		Flags: []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			s := store(c)
			names, err := s.Labs()
			if err != nil {
				return err
			}
			var states []*labs.State
			for _, n := range names {
				st, err := s.Load(n)
				if err != nil {
					return err
				}
				states = append(states, st)
			}
			if c.String("output") == "json" {
				type row struct {
					Lab, Phase, Accel, File string
					Hosts                   []string
					Created                 time.Time
				}
				rows := []row{}
				for _, st := range states {
					r := row{Lab: st.Lab, Phase: st.Phase, Accel: st.Accel, File: st.File, Created: st.Created}
					if st.Plan != nil {
						for _, h := range st.Plan.Hosts {
							r.Hosts = append(r.Hosts, h.Name)
						}
					}
					rows = append(rows, r)
				}
				return printJSON(rows)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "LAB\tPHASE\tHOSTS\tACCEL\tCREATED\tFILE")
			for _, st := range states {
				var hosts []string
				if st.Plan != nil {
					for _, h := range st.Plan.Hosts {
						hosts = append(hosts, h.Name)
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", st.Lab, st.Phase, strings.Join(hosts, ","), st.Accel,
					st.Created.Local().Format("2006-01-02 15:04"), st.File)
			}
			return w.Flush()
		},
	}
}

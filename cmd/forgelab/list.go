package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list labs (a lab whose state cannot be read is listed as broken, with why)",
		Flags: []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			entries, err := store(c).List()
			if err != nil {
				return err
			}
			type row struct {
				Lab, Phase, Accel, File string
				Hosts                   []string
				Created                 time.Time
				Error                   string `json:",omitempty"`
			}
			rows := []row{}
			for _, e := range entries {
				r := row{Lab: e.Name, Phase: e.Phase()}
				if st := e.State; st != nil {
					r.Accel, r.File, r.Created = st.Accel, st.File, st.Created
					if st.Plan != nil {
						for _, h := range st.Plan.Hosts {
							r.Hosts = append(r.Hosts, h.Name)
						}
					}
				}
				if e.Err != nil {
					r.Error = e.Err.Error()
				}
				rows = append(rows, r)
			}
			if c.String("output") == "json" {
				return printJSON(rows)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "LAB\tPHASE\tHOSTS\tACCEL\tCREATED\tFILE")
			for _, r := range rows {
				if r.Error != "" {
					fmt.Fprintf(w, "%s\t%s\t\t\t\t%s\n", r.Lab, r.Phase, r.Error)
					continue
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Lab, r.Phase, strings.Join(r.Hosts, ","), r.Accel,
					r.Created.Local().Format("2006-01-02 15:04"), r.File)
			}
			return w.Flush()
		},
	}
}

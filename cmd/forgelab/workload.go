package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
)

func workloadCommand() *cli.Command {
	return &cli.Command{
		Name:      "workload",
		Usage:     "show a lab's workloads (started by create in the background), or wait for them",
		ArgsUsage: "[--wait] [-o json] LAB [NAME]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "wait", Usage: "wait until they have ended; exit 1 if one failed or exited non-zero"},
			&cli.DurationFlag{Name: "timeout", Usage: "with --wait: give up after this long (0: no limit)"},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "[--wait] LAB [NAME]"); err != nil {
				return err
			}
			m := &labs.Manager{Store: store(c)}
			lab, name := c.Args().Get(0), c.Args().Get(1)
			var ws []labs.WorkloadStatus
			var err error
			if c.Bool("wait") {
				ctx := c.Context
				if d := c.Duration("timeout"); d > 0 {
					var cancel func()
					ctx, cancel = contextWithTimeout(ctx, d)
					defer cancel()
				}
				ws, err = m.WaitWorkloads(ctx, lab, name)
			} else {
				ws, err = m.Workloads(lab, name)
			}
			if ws == nil && err != nil {
				return err
			}
			if c.String("output") == "json" {
				if jerr := printJSON(ws); jerr != nil {
					return jerr
				}
			} else {
				printWorkloads(ws)
			}
			if err != nil {
				return err
			}
			if len(ws) == 0 {
				fmt.Fprintf(os.Stderr, "lab %s has no workloads\n", lab)
			}
			if c.Bool("wait") {
				for _, w := range ws {
					if w.State != labs.WorkloadExited || w.ExitCode != 0 {
						return cli.Exit("", 1)
					}
				}
			}
			return nil
		},
	}
}

func printWorkloads(ws []labs.WorkloadStatus) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "WORKLOAD\tHOST\tSTATE\tEXIT\tTIME\tMETRICS\tLAST METRIC")
	for _, s := range ws {
		exit, took := "", ""
		if s.Done() && s.State == labs.WorkloadExited {
			exit = fmt.Sprint(s.ExitCode)
			if s.TimedOut {
				exit += " (timeout)"
			}
		}
		switch {
		case !s.Ended.IsZero():
			took = s.Ended.Sub(s.Started).Round(100 * time.Millisecond).String()
		case !s.Started.IsZero():
			took = time.Since(s.Started).Round(time.Second).String()
		}
		last := ""
		if s.LastMetric != nil {
			b, _ := json.Marshal(s.LastMetric)
			last = string(b)
			if len(last) > 100 {
				last = last[:97] + "..."
			}
		}
		if s.Error != "" && last == "" {
			last = "error: " + s.Error
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.Host, s.State, exit, took, s.Metrics, last)
	}
	w.Flush()
	if len(ws) > 0 {
		fmt.Printf("\noutputs: %s/<name>/<host>/ (stdout, stderr, metrics.jsonl, status.json)\n", parentDir(parentDir(ws[0].Dir)))
	}
}

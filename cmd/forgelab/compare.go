package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/telemetry/compare"
	"github.com/forgelab/forgelab/telemetry/report"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// compareCommand: recorded runs against a baseline, with condition-
// bucketed statements (telemetry/compare) and plots (telemetry/report).
func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "compare recorded runs: medians, changes, and how each held up under each link condition",
		ArgsUsage: "RUN RUN...",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "baseline", Usage: "the run the others are measured against (default: the first)"},
			&cli.StringFlag{Name: "link", Usage: "bucket samples by this link's loss (default: the link whose loss changed most)"},
			&cli.StringFlag{Name: "edges", Usage: "loss bucket edges in percent, e.g. 0,1,5,10,100 (the default)"},
			&cli.StringSliceFlag{Name: "metric", Usage: "only this metric: WORKLOAD.FIELD, FIELD or link.LINK.loss_percent, with :higher or :lower to say which way is better (repeatable)"},
			&cli.BoolFlag{Name: "allow-incomplete", Usage: "compare runs that stopped early instead of refusing them"},
			&cli.StringFlag{Name: "html", Usage: "write a self-contained HTML report with plots to `FILE`"},
			&cli.StringFlag{Name: "png", Usage: "write the plots as PNG files into `DIR`"},
		},
		Action: func(c *cli.Context) error {
			edges, err := compare.ParseEdges(c.String("edges"))
			if err != nil {
				return err
			}
			rep, err := compare.Load(runs.Root(c.String("state-dir")), c.Args().Slice(), compare.Options{
				Baseline: c.String("baseline"), Link: c.String("link"), Edges: edges,
				Metrics: c.StringSlice("metric"), AllowIncomplete: c.Bool("allow-incomplete"),
			})
			if err != nil {
				return err
			}
			for _, w := range rep.Warnings {
				fmt.Fprintln(os.Stderr, "forgelab: warning:", w)
			}
			if f := c.String("html"); f != "" {
				if err := report.WriteHTMLFile(f, rep); err != nil {
					return err
				}
			}
			if d := c.String("png"); d != "" {
				if _, err := report.WritePNGs(d, rep); err != nil {
					return err
				}
			}
			if c.String("output") == "json" {
				return writeJSON(c.App.Writer, rep)
			}
			return compare.WriteText(c.App.Writer, rep)
		},
	}
}

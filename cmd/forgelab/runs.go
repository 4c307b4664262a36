package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/telemetry/anomaly"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// runsCommand: recorded runs outlive their lab; these subcommands read
// and manage <state-dir>/runs. Each is one call into telemetry/runs.
func runsCommand() *cli.Command {
	root := func(c *cli.Context) string { return runs.Root(c.String("state-dir")) }
	return &cli.Command{
		Name:  "runs",
		Usage: "list, show, remove, export and import recorded runs",
		Subcommands: []*cli.Command{
			{
				Name:      "ls",
				Usage:     "list runs, newest first",
				ArgsUsage: "[LAB]",
				Flags:     []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					list, err := runs.List(root(c), c.Args().First())
					if err != nil {
						return err
					}
					if c.String("output") == "json" {
						if list == nil {
							list = []runs.Summary{}
						}
						return writeJSON(c.App.Writer, list)
					}
					return runs.WriteList(c.App.Writer, list)
				},
			},
			{
				Name:      "show",
				Usage:     "show a run's metadata, environment and files",
				ArgsUsage: "RUN",
				Flags:     []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					r, err := openRun(c, root(c))
					if err != nil {
						return err
					}
					if c.String("output") == "json" {
						return writeJSON(c.App.Writer, r)
					}
					return runs.WriteShow(c.App.Writer, r)
				},
			},
			{
				Name:      "check",
				Usage:     "flag leaks, slow degradation and sudden drops in a run's series",
				ArgsUsage: "RUN",
				Description: "Tests the run's process resources (processes.csv) for leaks and its workloads' throughput and\n" +
					"latency fields for degradation and sudden changes (docs/runs.md, \"Checking a run\").\n" +
					"Exit status: 0 nothing flagged, 2 something flagged, 1 the run could not be read.",
				Flags: []cli.Flag{outputFlag, &cli.BoolFlag{Name: "all", Usage: "also list the series that were not flagged"}},
				Action: func(c *cli.Context) error {
					r, err := openRun(c, root(c))
					if err != nil {
						return err
					}
					all, err := anomaly.Analyze(r, anomaly.DefaultOptions())
					if err != nil {
						return err
					}
					if c.String("output") == "json" {
						if all == nil {
							all = []anomaly.Finding{}
						}
						err = writeJSON(c.App.Writer, all)
					} else {
						err = anomaly.WriteText(c.App.Writer, r.Name(), all, c.Bool("all"))
					}
					if err != nil {
						return err
					}
					for _, f := range all {
						if f.Flagged {
							return cli.Exit("", 2)
						}
					}
					return nil
				},
			},
			{
				Name:      "rm",
				Usage:     "remove runs",
				ArgsUsage: "RUN...",
				Action: func(c *cli.Context) error {
					if err := needRunsArgs(c, 1, "RUN..."); err != nil {
						return err
					}
					for _, ref := range c.Args().Slice() {
						dir, err := runs.Resolve(root(c), ref)
						if err != nil {
							return err
						}
						if err := runs.Remove(dir); err != nil {
							return err
						}
						fmt.Fprintln(c.App.Writer, "removed", ref)
					}
					return nil
				},
			},
			{
				Name:      "export",
				Usage:     "write a run as one .tar.gz archive",
				ArgsUsage: "RUN",
				Flags: []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true,
					Usage: "archive to write (FILE.tar.gz, or - for standard output)"}},
				Action: func(c *cli.Context) error {
					if err := needRunsArgs(c, 1, "RUN -o FILE.tar.gz"); err != nil {
						return err
					}
					dir, err := runs.Resolve(root(c), c.Args().First())
					if err != nil {
						return err
					}
					if out := c.String("output"); out != "-" {
						return runs.ExportFile(dir, out)
					}
					return runs.Export(dir, c.App.Writer)
				},
			},
			{
				Name:      "import",
				Usage:     "unpack a run archive made by export into the state dir",
				ArgsUsage: "FILE.tar.gz",
				Action: func(c *cli.Context) error {
					if err := needRunsArgs(c, 1, "FILE.tar.gz"); err != nil {
						return err
					}
					f, err := os.Open(c.Args().First())
					if err != nil {
						return err
					}
					defer f.Close()
					dir, err := runs.Import(root(c), f)
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, "imported", filepath.Base(filepath.Dir(dir))+"/"+filepath.Base(dir))
					return nil
				},
			},
		},
	}
}

func openRun(c *cli.Context, root string) (*runs.Run, error) {
	if err := needRunsArgs(c, 1, "RUN"); err != nil {
		return nil, err
	}
	return runs.Show(root, c.Args().First())
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// needRunsArgs is needArgs with the full command name: urfave/cli names a
// subcommand without its parent.
func needRunsArgs(c *cli.Context, n int, usage string) error {
	if c.NArg() < n {
		return fmt.Errorf("usage: forgelab runs %s %s", c.Command.Name, usage)
	}
	return nil
}

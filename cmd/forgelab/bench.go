package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/labs/bench"
	"github.com/forgelab/forgelab/labs/units"
	"github.com/forgelab/forgelab/telemetry/runs"
	"github.com/forgelab/forgelab/telemetry/stats"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		Usage:     "run a lab file's [bench] modes N times each, interleaved, and judge them against a baseline or the reference mode",
		ArgsUsage: "LAB.toml",
		Description: "Creates the lab if it is not up (and leaves it up; --down destroys it at the end), plays warm-up runs,\n" +
			"then --runs measured runs of every mode at every point, interleaved (A B C A B C ...). Each run is a\n" +
			"recorded run (forgelab runs ls). Exit codes: 0 no regression, 1 the bench failed, 2 bad input\n" +
			"(flags, the file, a baseline, too few runs), 3 a metric regressed. docs/bench.md says how to read the report.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "runs", Aliases: []string{"n"}, Usage: "measured runs per mode and point (default: [bench] runs, else 5)"},
			&cli.IntFlag{Name: "warmup", Usage: "warm-up rounds (default: [bench] warmup, else 1)", Value: -1},
			&cli.StringFlag{Name: "baseline", Aliases: []string{"b"}, Usage: "judge the runs against this stored baseline"},
			&cli.BoolFlag{Name: "against-reference", Usage: "judge every mode against the reference mode, metric by metric of the same name"},
			&cli.StringSliceFlag{Name: "mode", Usage: "run only these modes (repeat, or a,b)"},
			&cli.StringSliceFlag{Name: "point", Usage: "run only at these points (repeat, or a,b)"},
			&cli.StringFlag{Name: "noise", Usage: "noise threshold, e.g. 5% (default: [bench] noise, else 5%)"},
			&cli.StringFlag{Name: "tolerance", Usage: "how much worse is accepted, e.g. 10% (default: [bench] tolerance, else 10%)"},
			&cli.BoolFlag{Name: "down", Usage: "destroy the lab at the end"},
			&cli.BoolFlag{Name: "quiet", Usage: "check before and during each measured run that the machine and the lab are quiet; stop at a noisy run"},
			&cli.BoolFlag{Name: "allow-noise", Usage: "with --quiet: run anyway, record what was seen, list the noisy runs in the report"},
			&cli.StringFlag{Name: "accel", Usage: "when the lab is made: kvm, tcg or auto", Value: "auto"},
			outputFlag,
		},
		OnUsageError: usageExit,
		Subcommands:  []*cli.Command{benchBaselineCommand()},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("usage: forgelab bench LAB.toml --runs N [--baseline NAME]", bench.ExitUsage)
			}
			o := labs.BenchOptions{File: c.Args().First(), Runs: c.Int("runs"), Warmup: c.Int("warmup"), Baseline: c.String("baseline"),
				AgainstReference: c.Bool("against-reference"), Modes: list(c.StringSlice("mode")), Points: list(c.StringSlice("point")),
				Down: c.Bool("down"), Quiet: c.Bool("quiet"), AllowNoise: c.Bool("allow-noise"), Progress: os.Stderr, Noise: -1, Tolerance: -1}
			var err error
			if o.Noise, err = percentFlag(c, "noise"); err != nil {
				return err
			}
			if o.Tolerance, err = percentFlag(c, "tolerance"); err != nil {
				return err
			}
			if c.Int("runs") < 0 {
				return cli.Exit(fmt.Sprintf("--runs %d: give at least 1", c.Int("runs")), bench.ExitUsage)
			}
			pb, err := labs.PrepareBench(c.String("state-dir"), o)
			if err != nil {
				return benchExit(err)
			}
			accel, err := labs.ChooseAccel(c.String("accel"))
			if err != nil {
				return err
			}
			pb.SetCreate(labs.CreateOptions{Accel: accel.Accel, AccelReason: accel.Reason})
			m, done, err := manager(c)
			if err != nil {
				return err
			}
			defer done()
			rep, err := m.Bench(c.Context, pb)
			if err != nil {
				return benchExit(err)
			}
			if c.String("output") == "json" {
				if err := printJSON(rep); err != nil {
					return err
				}
			} else {
				rep.Print(os.Stdout)
			}
			if code := rep.ExitCode(); code != bench.ExitOK {
				return cli.Exit("", code)
			}
			return nil
		},
	}
}

func benchBaselineCommand() *cli.Command {
	return &cli.Command{
		Name:         "baseline",
		Usage:        "stored baselines: set, show, rm, ls",
		OnUsageError: usageExit,
		Subcommands: []*cli.Command{
			{
				Name:         "set",
				Usage:        "store the measured runs of a bench as baseline NAME (replacing one of that name)",
				ArgsUsage:    "NAME (RUN... | --from-last)",
				Flags:        []cli.Flag{&cli.BoolFlag{Name: "from-last", Usage: "the runs of the last bench under this state dir"}},
				OnUsageError: usageExit,
				Action: func(c *cli.Context) error {
					if c.NArg() < 1 || (c.Bool("from-last") == (c.NArg() > 1)) {
						return cli.Exit("usage: forgelab bench baseline set NAME (RUN... | --from-last)", bench.ExitUsage)
					}
					bs := baselines(c)
					name := c.Args().First()
					var b *bench.Baseline
					var err error
					if c.Bool("from-last") {
						b, err = bs.Last(name)
					} else {
						b, err = bench.FromRuns(runs.Root(c.String("state-dir")), name, c.Args().Slice()[1:])
					}
					if err == nil {
						err = bs.Set(b)
					}
					if err != nil {
						return benchExit(err)
					}
					fmt.Fprintf(os.Stderr, "baseline %s: %d metrics from %d runs of lab %s\n", b.Name, len(b.Samples), len(b.Runs()), b.Lab)
					return nil
				},
			},
			{
				Name: "show", Usage: "a baseline's metrics and runs", ArgsUsage: "NAME", Flags: []cli.Flag{outputFlag}, OnUsageError: usageExit,
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cli.Exit("usage: forgelab bench baseline show NAME", bench.ExitUsage)
					}
					b, err := baselines(c).Get(c.Args().First())
					if err != nil {
						return benchExit(err)
					}
					if c.String("output") == "json" {
						return printJSON(b)
					}
					fmt.Printf("baseline %s: lab %s, made %s\n\n", b.Name, b.Lab, b.Created.Format("2006-01-02 15:04:05 MST"))
					tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "mode\tpoint\tmetric\tbetter\tmedian\tn\truns\t")
					for _, s := range b.Samples {
						med, _ := stats.Median(s.Values)
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", s.Key.Mode, orDash(s.Key.Point), s.Key.Metric, s.Better,
							stats.FormatValue(med, ""), len(s.Values), strings.Join(s.Runs, " "))
					}
					return tw.Flush()
				},
			},
			{
				Name: "rm", Usage: "remove a baseline", ArgsUsage: "NAME", OnUsageError: usageExit,
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cli.Exit("usage: forgelab bench baseline rm NAME", bench.ExitUsage)
					}
					return benchExit(baselines(c).Remove(c.Args().First()))
				},
			},
			{
				Name: "ls", Usage: "list the baselines", Flags: []cli.Flag{outputFlag}, OnUsageError: usageExit,
				Action: func(c *cli.Context) error {
					bs, err := baselines(c).List()
					if err != nil {
						return err
					}
					if c.String("output") == "json" {
						return printJSON(bs)
					}
					tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tLAB\tMETRICS\tRUNS\tMADE\t")
					for _, b := range bs {
						fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t\n", b.Name, b.Lab, len(b.Samples), len(b.Runs()), b.Created.Format("2006-01-02 15:04"))
					}
					return tw.Flush()
				},
			},
		},
	}
}

func baselines(c *cli.Context) bench.Store { return bench.NewStore(c.String("state-dir")) }

// benchExit gives bad input its own exit code.
func benchExit(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, bench.ErrUsage) || errors.Is(err, bench.ErrNoBaseline) {
		return cli.Exit(strings.TrimPrefix(err.Error(), bench.ErrUsage.Error()+": "), bench.ExitUsage)
	}
	return err
}

func usageExit(c *cli.Context, err error, _ bool) error {
	return cli.Exit(err.Error(), bench.ExitUsage)
}

func percentFlag(c *cli.Context, name string) (float64, error) {
	s := c.String(name)
	if s == "" {
		return -1, nil
	}
	v, err := units.ParsePercent(s)
	if err != nil || v < 0 || v >= 100 {
		return 0, cli.Exit(fmt.Sprintf("--%s %q is not a percentage in [0, 100), e.g. 5%%", name, s), bench.ExitUsage)
	}
	return v / 100, nil
}

// list splits comma-separated values; nil when none were given.
func list(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "play a scenario on a running lab (mobility, link quality, events) and record it as a run",
		ArgsUsage: "LAB [SCENARIO.toml]",
		Description: "Plays SCENARIO.toml, or the lab file's own [scenario], in the foreground with a live status,\n" +
			"until its end or Ctrl-C; then puts every link back to the lab file's quality. The run's folder\n" +
			"(forgelab runs show) holds everything recorded. Changes made meanwhile from another terminal are part of the run.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "variant", Usage: "label of this run (e.g. babeld), for comparisons"},
			&cli.DurationFlag{Name: "for", Usage: "play this long instead of the scenario's duration (required without a scenario, or --duration)"},
			&cli.DurationFlag{Name: "duration", Usage: "a soak run: run this long (the scenario once, then held at its end state), workloads kept running"},
			&cli.DurationFlag{Name: "sample-every", Usage: "sample the workloads' and services' processes in the hosts (processes.csv) this often; 0: not at all (default: 1s under KVM, 5s under TCG, where a reading costs ~0.2 CPU-s in the guest)"},
			&cli.BoolFlag{Name: "quiet", Usage: "check first that the machine and the guests are quiet (load, other VMs and labs, busy processes, timers); refuse the run if not"},
			&cli.BoolFlag{Name: "allow-noise", Usage: "with --quiet: run even if noisy, and mark the run (its fingerprint notes what was seen)"},
			&cli.BoolFlag{Name: "no-status", Usage: "no live status"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "LAB [SCENARIO.toml]"); err != nil {
				return err
			}
			m, done, err := manager(c)
			if err != nil {
				return err
			}
			defer done()
			o := labs.RunOptions{Scenario: c.Args().Get(1), Variant: c.String("variant"), For: c.Duration("for"), Status: os.Stderr,
				Duration: c.Duration("duration"), SampleEvery: c.Duration("sample-every"), Quiet: c.Bool("quiet"), AllowNoise: c.Bool("allow-noise")}
			if c.IsSet("sample-every") && o.SampleEvery == 0 {
				o.SampleEvery = -1
			}
			if c.Bool("no-status") {
				o.Status = nil
			}
			rep, err := m.Run(c.Context, c.Args().First(), o)
			if rep != nil {
				fmt.Fprintf(os.Stderr, "run %s: %s%s; %d quality changes applied (%d refused); links back to the lab file's quality\n",
					rep.ID, rep.Status, reason(rep.Reason), rep.Applied, rep.Failed)
				if rep.Noisy {
					fmt.Fprintf(os.Stderr, "run %s is marked noisy: `forgelab runs show` lists what the quiet check saw\n", rep.ID)
				}
				fmt.Println(rep.Dir)
			}
			return err
		},
	}
}

func reason(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/labs/bench"
	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/labs/spec"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a lab file and show what create would make",
		ArgsUsage: "LAB.toml",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "LAB.toml"); err != nil {
				return err
			}
			sp, err := spec.Load(c.Args().First())
			if err != nil {
				return err
			}
			p, err := plan.NewPlan(sp)
			if err != nil {
				return err
			}
			if err := labs.CheckSoftware(sp, p); err != nil {
				return err
			}
			var cfg *bench.Config
			if sp.Bench {
				if cfg, err = bench.Parse(sp.File, sp.Source, sp); err != nil {
					return err
				}
			}
			fmt.Printf("%s: lab %s is valid: %d hosts, %d links (id %s)\n", sp.File, sp.Lab.Name, len(p.Hosts), len(p.Links), p.ID)
			for _, h := range p.Hosts {
				fmt.Printf("  host %-10s %d cpu %5d MiB  image %s  mgmt %s\n", h.Name, h.CPUs, h.MemoryMiB, h.Image, h.MgmtIP)
			}
			for _, l := range p.Links {
				fmt.Printf("  link %-10s %v  %s %s\n", l.Name, l.Endpoints, l.Subnet4, l.Subnet6)
			}
			if cfg != nil {
				fmt.Printf("  bench      modes %s; %d points; %d runs, %d warm-up\n", strings.Join(cfg.ModeNames(), ", "), len(cfg.Points), cfg.Runs, cfg.Warmup)
			}
			return nil
		},
	}
}

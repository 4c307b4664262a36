package main

import (
	"context"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
)

// Hidden commands that run detached, started by create: the lab's
// coordination service and its workload runner. The launcher writes each
// one's pid file (a KindProcess of the lab, stopped by destroy); the
// helper removes it when it ends.

func coorddCommand() *cli.Command {
	return &cli.Command{
		Name:   "coordd",
		Hidden: true,
		Usage:  "serve a lab's coordination service (started by create)",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "listen", Usage: "ADDR:PORT (repeatable)"},
			&cli.IntFlag{Name: "fds", Usage: "listeners inherited as fd 3, 4, ..."},
			&cli.StringFlag{Name: "pid-file"},
		},
		Action: func(c *cli.Context) error {
			ctx, stop := helperContext(c)
			defer stop()
			if p := c.String("pid-file"); p != "" {
				defer labs.ReleasePIDFile(p)
			}
			return labs.ServeCoord(ctx, c.Int("fds"), c.StringSlice("listen"))
		},
	}
}

func workloaddCommand() *cli.Command {
	return &cli.Command{
		Name:      "workloadd",
		Hidden:    true,
		Usage:     "run a lab's workloads (started by create)",
		ArgsUsage: "LAB",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "pid-file"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "LAB"); err != nil {
				return err
			}
			ctx, stop := helperContext(c)
			defer stop()
			if p := c.String("pid-file"); p != "" {
				defer labs.ReleasePIDFile(p)
			}
			m := &labs.Manager{Store: store(c)}
			err := m.RunWorkloads(ctx, c.Args().First())
			if ctx.Err() != nil {
				return nil // stopped by destroy: the workloads were ended
			}
			return err
		},
	}
}

// helperContext ends on SIGTERM and SIGINT (destroy stops helpers with
// SIGTERM and waits 5 s before SIGKILL).
func helperContext(c *cli.Context) (context.Context, func()) {
	return signal.NotifyContext(context.WithoutCancel(c.Context), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, func()) {
	return context.WithTimeout(ctx, d)
}

func parentDir(p string) string { return filepath.Dir(p) }

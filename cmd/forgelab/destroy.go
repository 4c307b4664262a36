package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	labstore "github.com/forgelab/forgelab/labs/store"
)

func destroyCommand() *cli.Command {
	return &cli.Command{
		Name:      "destroy",
		Usage:     "remove a lab and everything it made (safe to repeat)",
		ArgsUsage: "LAB...",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "all", Usage: "destroy every lab"}},
		Action: func(c *cli.Context) error {
			names := c.Args().Slice()
			if c.Bool("all") {
				entries, err := store(c).List()
				if err != nil {
					return err
				}
				for _, e := range entries {
					if e.Err != nil {
						fmt.Fprintf(os.Stderr, "lab %s is broken, skipped: %v\n", e.Name, e.Err)
						continue
					}
					names = append(names, e.Name)
				}
			} else if len(names) == 0 {
				return fmt.Errorf("usage: forgelab destroy LAB... (or --all)")
			}
			m, done, err := manager(c)
			if err != nil {
				return err
			}
			defer done()
			var errs []error
			for _, name := range names {
				start := time.Now()
				// Destroy finishes even on Ctrl-C: a half-removed lab is worse.
				err := m.Destroy(context.WithoutCancel(c.Context), name)
				if errors.Is(err, labstore.ErrNoLab) {
					fmt.Fprintf(os.Stderr, "lab %s: nothing to destroy\n", name)
					continue
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("destroy %s: %w", name, err))
					continue
				}
				fmt.Fprintf(os.Stderr, "lab %s destroyed in %s\n", name, time.Since(start).Round(10*time.Millisecond))
			}
			return errors.Join(errs...)
		},
	}
}

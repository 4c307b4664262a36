package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
)

func deployCommand() *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "copy the lab file's [[deploy]] entries again after a rebuild (only changed files are sent) and restart the services that use them",
		ArgsUsage: "[--host H] LAB",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "host", Usage: "deploy to this host only"},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "[--host H] LAB"); err != nil {
				return err
			}
			// No libvirt needed: deploys go over SSH.
			m := &labs.Manager{Store: store(c), Progress: os.Stderr}
			start := time.Now()
			res, err := m.Redeploy(c.Context, c.Args().First(), c.String("host"))
			if c.String("output") == "json" {
				if jerr := printJSON(res); jerr != nil {
					return jerr
				}
				return err
			}
			sent, skipped := 0, 0
			for _, r := range res {
				line := fmt.Sprintf("%-10s %d sent (%d bytes), %d unchanged, %d fixed", r.Host, r.Report.Sent, r.Report.Bytes, r.Report.Skipped, r.Report.Updated)
				if len(r.Restarted) > 0 {
					line += "; restarted " + strings.Join(r.Restarted, ", ")
				}
				fmt.Println(line)
				sent += r.Report.Sent
				skipped += r.Report.Skipped
			}
			if err != nil {
				return fmt.Errorf("deploy %s: %w", c.Args().First(), err)
			}
			fmt.Fprintf(os.Stderr, "deployed in %s: %d files sent, %d unchanged\n", time.Since(start).Round(10*time.Millisecond), sent, skipped)
			return nil
		},
	}
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/labs/spec"
)

func createCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "boot a lab's VMs, wire its links, and return when every host answers SSH",
		ArgsUsage: "LAB.toml",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "accel", Usage: "kvm, tcg or auto (detect)", Value: "auto"},
			&cli.StringFlag{Name: "boot", Usage: "kernel (the image's own kernel, directly, where the image keeps one) or disk (BIOS and the disk's boot loader)", Value: "kernel"},
			&cli.IntFlag{Name: "parallel", Usage: "VMs booting at once (0: fit the CPUs)"},
			&cli.DurationFlag{Name: "timeout", Usage: "per-host wait for SSH (0: 2m under KVM, 6m under TCG)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "LAB.toml"); err != nil {
				return err
			}
			sp, err := spec.Load(c.Args().First())
			if err != nil {
				return err
			}
			if abs, err := filepath.Abs(sp.File); err == nil {
				sp.File = abs
			}
			accel, err := labs.ChooseAccel(c.String("accel"))
			if accel.Accel != "" {
				fmt.Fprintf(os.Stderr, "accelerator: %s (%s)\n", accel.Accel, accel.Reason)
			}
			if accel.Warning != "" {
				fmt.Fprintln(os.Stderr, "warning:", accel.Warning)
			}
			if err != nil {
				return err
			}
			if b := c.String("boot"); b != "kernel" && b != "disk" {
				return fmt.Errorf("--boot %q: use kernel or disk", b)
			}
			m, done, err := manager(c)
			if err != nil {
				return err
			}
			defer done()
			start := time.Now()
			st, err := m.Create(c.Context, sp, labs.CreateOptions{
				Accel: accel.Accel, AccelReason: accel.Reason, Parallel: c.Int("parallel"), ReadyTimeout: c.Duration("timeout"),
				DiskBoot: c.String("boot") == "disk",
			})
			if err != nil {
				return fmt.Errorf("create %s: %w", sp.Lab.Name, err)
			}
			fmt.Fprintf(os.Stderr, "lab %s is ready (%d hosts) in %s\n", st.Lab, len(st.Plan.Hosts), time.Since(start).Round(100*time.Millisecond))
			info, err := m.Inspect(st.Lab)
			if err != nil {
				return err
			}
			printInfo(info)
			fmt.Printf("\nforgelab ssh %s %s    # log in\nforgelab destroy %s   # remove everything\n", st.Lab, st.Plan.Hosts[0].Name, st.Lab)
			return nil
		},
	}
}

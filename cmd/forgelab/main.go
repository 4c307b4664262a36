// Command forgelab builds, runs and tears down labs of VMs and emulated links.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs"
	labstore "github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/telemetry/runs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	version, commit, goVersion := runs.BuildInfo()
	app := &cli.App{
		Name:    "forgelab",
		Version: fmt.Sprintf("%s (commit %s, %s)", version, commit, goVersion),
		Usage:   "labs of real VMs and emulated links for distributed systems and new networks",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state-dir", Usage: "where images, labs and runs live", EnvVars: []string{"FORGELAB_STATE_DIR"}, Value: labstore.DefaultStateDir()},
			&cli.StringFlag{Name: "libvirt-uri", Usage: "libvirt connection", EnvVars: []string{"FORGELAB_LIBVIRT_URI"}, Value: hypervisor.DefaultURI},
		},
		Commands: []*cli.Command{
			createCommand(), destroyCommand(), listCommand(), inspectCommand(), validateCommand(),
			sshCommand(), execCommand(), consoleCommand(), imageCommand(),
			deployCommand(), logsCommand(), workloadCommand(), coorddCommand(), workloaddCommand(),
			linkCommand(), partitionCommand(), healCommand(), captureCommand(), hostCommand(), nicCommand(), fabricdCommand(),
			runCommand(), runsCommand(), compareCommand(), benchCommand(), serveCommand(), gcCommand(), completionCommand(),
		},
		EnableBashCompletion: true,                         // forgelab completion prints the scripts that use it
		ExitErrHandler:       func(*cli.Context, error) {}, // main prints errors once
	}
	if err := app.RunContext(ctx, hoistFlags(app, os.Args)); err != nil {
		var exit cli.ExitCoder
		if errors.As(err, &exit) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "forgelab:", msg)
			}
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "forgelab:", err)
		os.Exit(1)
	}
}

// store is the state directory. (Its name shadows package store, which
// only main.go needs.)
func store(c *cli.Context) *labstore.Store { return &labstore.Store{Dir: c.String("state-dir")} }

// manager connects to libvirt; the caller closes the connection.
func manager(c *cli.Context) (*labs.Manager, func(), error) {
	m, conn, err := labs.Open(c.String("state-dir"), c.String("libvirt-uri"), os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	return m, func() { conn.Close() }, nil
}

var outputFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "table or json", Value: "table"}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func needArgs(c *cli.Context, n int, usage string) error {
	if c.NArg() < n {
		return fmt.Errorf("usage: forgelab %s %s", c.Command.FullName(), usage)
	}
	return nil
}

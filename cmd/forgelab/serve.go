package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/telemetry/backend/fromlabs"
	"github.com/forgelab/forgelab/telemetry/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "web UI, Prometheus /metrics and an HTTP API over every lab of this machine",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: serve.DefaultListen, Usage: "host:port; beyond loopback it needs --token-file"},
			&cli.StringFlag{Name: "token-file", Usage: "file with a bearer token (mode 600) that every change must present"},
			&cli.BoolFlag{Name: "open", Usage: "print the page's address (with the token) on stdout"},
		},
		Action: func(c *cli.Context) error {
			var token string
			if p := c.String("token-file"); p != "" {
				var err error
				if token, err = serve.ReadTokenFile(p); err != nil {
					return err
				}
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			s, err := serve.New(fromlabs.New(c.String("state-dir")), serve.Config{Listen: c.String("listen"), Token: token, Log: log})
			if err != nil {
				return err
			}
			ln, err := serve.Listen(c.Context, c.String("listen"))
			if err != nil {
				return err
			}
			url := serve.URL(ln)
			fmt.Fprintf(os.Stderr, "forgelab serve: %s (metrics at %smetrics, API at %sapi/v1/labs)\n", url, url, url)
			if c.Bool("open") {
				if token != "" {
					url += "#token=" + token
				}
				fmt.Println(url)
			}
			return s.Serve(c.Context, ln)
		},
	}
}

package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/forgelab/forgelab/images"
)

func imageCommand() *cli.Command {
	imgStore := func(c *cli.Context) *images.Store { return images.NewStore(store(c).ImagesDir()) }
	return &cli.Command{
		Name:  "image",
		Usage: "build, import, list and remove guest images",
		Subcommands: []*cli.Command{
			{
				Name:      "build",
				Usage:     "build an image from a built-in recipe (" + fmt.Sprint(images.Recipes()) + ")",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "force", Usage: "rebuild even if it exists"}},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "NAME"); err != nil {
						return err
					}
					s, name := imgStore(c), c.Args().First()
					if s.Has(name) && !c.Bool("force") {
						fmt.Fprintf(os.Stderr, "image %s exists (%s); --force rebuilds it\n", name, s.Path(name))
						return nil
					}
					if s.Has(name) {
						if users := labsUsingImage(c, name); len(users) > 0 {
							return fmt.Errorf("image %s is used by labs %v: destroy them before rebuilding", name, users)
						}
						if err := s.Remove(name); err != nil {
							return err
						}
					}
					if err := s.Build(c.Context, name, os.Stderr); err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "image %s built: %s\n", name, s.Path(name))
					return nil
				},
			},
			{
				Name:      "import",
				Usage:     "import a qcow2 or raw disk image (a cloud image, your own node image)",
				ArgsUsage: "NAME FILE",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "sha256", Usage: "expected SHA-256 of FILE"}},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 2, "NAME FILE"); err != nil {
						return err
					}
					s := imgStore(c)
					if err := s.Import(c.Context, c.Args().Get(0), c.Args().Get(1), c.String("sha256")); err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "image %s imported: %s\n", c.Args().Get(0), s.Path(c.Args().Get(0)))
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list images",
				Flags: []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					list, err := imgStore(c).List()
					if err != nil {
						return err
					}
					if c.String("output") == "json" {
						if list == nil {
							list = []images.Image{}
						}
						return printJSON(list)
					}
					w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "NAME\tVIRTUAL\tFILE\tCREATED\tSOURCE")
					for _, im := range list {
						fmt.Fprintf(w, "%s\t%d MiB\t%d MiB\t%s\t%s\n", im.Name, im.VirtualSize>>20, im.FileSize>>20, im.Created.Local().Format("2006-01-02 15:04"), im.Source)
					}
					return w.Flush()
				},
			},
			{
				Name:      "rm",
				Usage:     "remove an image (refused while a lab uses it)",
				ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "NAME"); err != nil {
						return err
					}
					name := c.Args().First()
					if users := labsUsingImage(c, name); len(users) > 0 {
						return fmt.Errorf("image %s is used by labs %v: destroy them first", name, users)
					}
					return imgStore(c).Remove(name)
				},
			},
		},
	}
}

func labsUsingImage(c *cli.Context, image string) []string { return store(c).LabsUsingImage(image) }

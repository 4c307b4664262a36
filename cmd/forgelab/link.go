package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/labs/units"
)

// control is the Manager for the control path's link commands: they need
// no libvirt connection.
func control(c *cli.Context) *labs.Manager { return &labs.Manager{Store: store(c)} }

func linkCommand() *cli.Command {
	return &cli.Command{
		Name:  "link",
		Usage: "show and change link quality while a lab runs",
		Subcommands: []*cli.Command{
			{
				Name:      "set",
				Usage:     "change a link's quality (flags not given keep their value; --clear starts from none)",
				ArgsUsage: "LAB LINK",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "from", Usage: "only traffic sent by this host (default: every direction)"},
					&cli.BoolFlag{Name: "clear", Usage: "start from no impairment"},
					&cli.StringFlag{Name: "rate", Usage: "e.g. 10mbit, 1gbit"},
					&cli.StringFlag{Name: "delay", Usage: "e.g. 20ms"},
					&cli.StringFlag{Name: "jitter", Usage: "e.g. 2ms"},
					&cli.StringFlag{Name: "distribution", Usage: "jitter distribution: uniform, normal, pareto, paretonormal"},
					&cli.StringFlag{Name: "loss", Usage: "e.g. 1%"},
					&cli.StringFlag{Name: "loss-burst", Usage: `bursty loss instead of --loss (Gilbert-Elliott, as tc's "loss gemodel"): "P R [1-H [1-K]]" in percent, e.g. "1% 30%"`},
					&cli.StringFlag{Name: "duplicate", Usage: "e.g. 0.5%"},
					&cli.StringFlag{Name: "reorder", Usage: "share of packets that skip the delay, e.g. 5% (needs --delay)"},
					&cli.StringFlag{Name: "corrupt", Usage: "e.g. 0.1%"},
					&cli.IntFlag{Name: "limit", Usage: "queue limit in packets (0: from the bandwidth-delay product)"},
				},
				Action: linkSet,
			},
			{
				Name:      "show",
				Usage:     "show every link's quality and counters",
				ArgsUsage: "LAB",
				Flags:     []cli.Flag{outputFlag},
				Action:    linkShow,
			},
			{
				Name:      "reseed",
				Usage:     "restart the fabric's random choices from the lab seed: the same traffic meets the same losses again (userspace fabric only)",
				ArgsUsage: "LAB",
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "LAB"); err != nil {
						return err
					}
					seed, err := control(c).Reseed(c.Context, labs.SourceCLI, c.Args().First())
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "random streams of %s restarted from seed %d\n", c.Args().First(), seed)
					return nil
				},
			},
			{Name: "down", Usage: "take a link down (nothing passes)", ArgsUsage: "LAB LINK", Action: func(c *cli.Context) error { return linkUpDown(c, false) }},
			{Name: "up", Usage: "bring a link back up", ArgsUsage: "LAB LINK", Action: func(c *cli.Context) error { return linkUpDown(c, true) }},
		},
	}
}

func linkSet(c *cli.Context) error {
	if err := needArgs(c, 2, "LAB LINK [flags]"); err != nil {
		return err
	}
	lab, link := c.Args().Get(0), c.Args().Get(1)
	change, err := qualityFlags(c)
	if err != nil {
		return err
	}
	set, err := control(c).SetLink(c.Context, labs.SourceCLI, lab, link, c.String("from"), change)
	if err != nil {
		return err
	}
	for _, d := range set {
		fmt.Fprintf(os.Stderr, "%s from %s: %s\n", link, d.From, d.Quality)
	}
	return nil
}

// qualityFlags reads the quality flags given into a change; flags not
// given keep their value.
func qualityFlags(c *cli.Context) (labs.QualityChange, error) {
	ch := labs.QualityChange{Clear: c.Bool("clear")}
	var err error
	parse := func(name string, f func(string) error) {
		if err == nil && c.IsSet(name) {
			if e := f(c.String(name)); e != nil {
				err = fmt.Errorf("--%s %w", name, e)
			}
		}
	}
	parse("rate", func(v string) error { r, e := units.ParseRate(v); ch.RateBits = &r; return e })
	parse("delay", func(v string) error { d, e := units.ParseDelay(v); ch.Delay = &d; return e })
	parse("jitter", func(v string) error { d, e := units.ParseDelay(v); ch.Jitter = &d; return e })
	parse("distribution", func(v string) error { ch.Distribution = &v; return nil })
	parse("loss", func(v string) error { p, e := units.ParsePercent(v); ch.Loss = &p; return e })
	parse("loss-burst", func(v string) error { b, e := units.ParseBurstLoss(v); ch.LossBurst = &b; return e })
	if err == nil && ch.Loss != nil && ch.LossBurst != nil {
		err = fmt.Errorf("--loss and --loss-burst both given: random loss or bursty loss, not both")
	}
	parse("duplicate", func(v string) error { p, e := units.ParsePercent(v); ch.Duplicate = &p; return e })
	parse("reorder", func(v string) error { p, e := units.ParsePercent(v); ch.Reorder = &p; return e })
	parse("corrupt", func(v string) error { p, e := units.ParsePercent(v); ch.Corrupt = &p; return e })
	if c.IsSet("limit") {
		l := c.Int("limit")
		ch.Limit = &l
	}
	return ch, err
}

func linkShow(c *cli.Context) error {
	if err := needArgs(c, 1, "LAB"); err != nil {
		return err
	}
	cur, err := control(c).ShowLinks(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	if c.String("output") == "json" {
		return printJSON(cur)
	}
	fmt.Printf("fabric: %s", cur.Shaper)
	if len(cur.Groups) > 0 {
		fmt.Printf("; partitioned into %v", cur.Groups)
	}
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LINK\tUP\tFROM\tQUALITY\tPACKETS IN/OUT\tDROPPED")
	for _, l := range cur.Links {
		for _, d := range l.Directions {
			q := d.Quality.String()
			if q == "" {
				q = "-"
			}
			pk, dr := "", ""
			if k := d.Counters; k != nil {
				pk = fmt.Sprintf("%d/%d", k.RxPackets, k.TxPackets)
				dr = fmt.Sprint(k.DropLoss + k.DropQueue + k.DropDown + k.DropPartition + k.DropError + k.DropOverrun)
				if k.DropPeerDown > 0 {
					// Not a fault: the receiver's NIC was not up (booting, stopped).
					dr += fmt.Sprintf(" (+%d peer down)", k.DropPeerDown)
				}
			}
			fmt.Fprintf(w, "%s\t%v\t%s\t%s\t%s\t%s\n", l.Name, l.Up, d.From, q, pk, dr)
		}
	}
	return w.Flush()
}

func linkUpDown(c *cli.Context, up bool) error {
	if err := needArgs(c, 2, "LAB LINK"); err != nil {
		return err
	}
	if err := control(c).LinkUpDown(c.Context, labs.SourceCLI, c.Args().Get(0), c.Args().Get(1), up); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "link %s is %s\n", c.Args().Get(1), map[bool]string{true: "up", false: "down"}[up])
	return nil
}

func partitionCommand() *cli.Command {
	return &cli.Command{
		Name:      "partition",
		Usage:     "split the lab: hosts in different groups cannot reach each other on any link",
		ArgsUsage: "LAB GROUP GROUP... (a group is hosts joined by commas: a,b c)",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 3, "LAB GROUP GROUP..."); err != nil {
				return err
			}
			lab := c.Args().Get(0)
			var groups [][]string
			for _, g := range c.Args().Slice()[1:] {
				groups = append(groups, strings.Split(g, ","))
			}
			if err := control(c).Partition(c.Context, labs.SourceCLI, lab, groups); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "partitioned %s into %v\n", lab, groups)
			return nil
		},
	}
}

func healCommand() *cli.Command {
	return &cli.Command{
		Name:      "heal",
		Usage:     "end a partition",
		ArgsUsage: "LAB",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "LAB"); err != nil {
				return err
			}
			if err := control(c).Heal(c.Context, labs.SourceCLI, c.Args().Get(0)); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "healed %s\n", c.Args().Get(0))
			return nil
		},
	}
}

func captureCommand() *cli.Command {
	return &cli.Command{
		Name:      "capture",
		Usage:     "capture a link's packets as pcap (-w - streams to stdout: | wireshark -k -i -)",
		ArgsUsage: "LAB LINK",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "write", Aliases: []string{"w"}, Usage: "pcap file, or - for stdout"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, "LAB LINK"); err != nil {
				return err
			}
			out := os.Stdout
			switch path := c.String("write"); path {
			case "":
				if term.IsTerminal(int(os.Stdout.Fd())) {
					return errors.New("pcap is binary: write it to a file with -w FILE, or pipe it with -w -")
				}
			case "-":
			default:
				f, err := os.Create(path)
				if err != nil {
					return err
				}
				defer f.Close()
				out = f
			}
			fmt.Fprintf(os.Stderr, "capturing %s (Ctrl-C stops)\n", c.Args().Get(1))
			return control(c).Capture(c.Context, labs.SourceCLI, c.Args().Get(0), c.Args().Get(1), out)
		},
	}
}

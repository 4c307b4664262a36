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
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/netfabric"
)

// labShaper loads a lab's state and its shaper; link changes need no
// libvirt connection.
func labShaper(c *cli.Context, lab string) (*labs.State, netfabric.Shaper, *labs.Store, error) {
	s := store(c)
	st, err := s.Load(lab)
	if err != nil {
		return nil, nil, nil, err
	}
	sh, err := (&labs.Manager{Store: s}).Shaper(st)
	if err != nil {
		return nil, nil, nil, err
	}
	return st, sh, s, nil
}

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
				Usage:     "restart the fabric's random choices from the lab seed: the same traffic meets the same losses again",
				ArgsUsage: "LAB",
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "LAB"); err != nil {
						return err
					}
					st, sh, s, err := labShaper(c, c.Args().First())
					if err != nil {
						return err
					}
					r, ok := sh.(netfabric.Reseeder)
					if !ok {
						return fmt.Errorf("the %s fabric draws its random choices in the kernel and cannot restart them", sh.Name())
					}
					if err := r.Reseed(c.Context); err != nil {
						return err
					}
					s.LogEvent(st.Lab, "reseed %d", st.Plan.Seed)
					fmt.Fprintf(os.Stderr, "random streams of %s restarted from seed %d\n", st.Lab, st.Plan.Seed)
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
	lab, link, from := c.Args().Get(0), c.Args().Get(1), c.String("from")
	st, sh, s, err := labShaper(c, lab)
	if err != nil {
		return err
	}
	cur, err := sh.Show(c.Context)
	if err != nil {
		return err
	}
	var dirs []netfabric.Direction
	found := false
	for _, l := range cur.Links {
		if l.Name != link {
			continue
		}
		found = true
		for _, d := range l.Directions {
			if from == "" || d.From == from {
				dirs = append(dirs, d)
			}
		}
	}
	if !found {
		return fmt.Errorf("lab %s has no link %q (forgelab link show %s lists them)", st.Lab, link, st.Lab)
	}
	if len(dirs) == 0 {
		return fmt.Errorf("link %s has no endpoint %q", link, from)
	}
	// Work out every new quality first, so a bad value changes nothing.
	next := make([]netfabric.Impairment, len(dirs))
	for i, d := range dirs {
		q := d.Quality
		if c.Bool("clear") {
			q = netfabric.Impairment{}
		}
		if err := applyQualityFlags(c, &q); err != nil {
			return err
		}
		if err := q.Validate(); err != nil {
			return fmt.Errorf("link %s: %w", link, err)
		}
		next[i] = q
	}
	for i, d := range dirs {
		if err := sh.Set(c.Context, link, d.From, next[i]); err != nil {
			return err
		}
		s.LogEvent(st.Lab, "link set %s from %s: %s", link, d.From, next[i])
		fmt.Fprintf(os.Stderr, "%s from %s: %s\n", link, d.From, next[i])
	}
	return nil
}

func applyQualityFlags(c *cli.Context, q *netfabric.Impairment) error {
	var err error
	parse := func(name string, f func(string) error) {
		if err == nil && c.IsSet(name) {
			if e := f(c.String(name)); e != nil {
				err = fmt.Errorf("--%s %w", name, e)
			}
		}
	}
	parse("rate", func(v string) (e error) { q.RateBits, e = spec.ParseRate(v); return })
	parse("delay", func(v string) (e error) { q.Delay, e = spec.ParseDelay(v); return })
	parse("jitter", func(v string) (e error) { q.Jitter, e = spec.ParseDelay(v); return })
	parse("distribution", func(v string) error { q.Distribution = v; return nil })
	parse("loss", func(v string) (e error) { q.Loss, e = spec.ParsePercent(v); return })
	parse("duplicate", func(v string) (e error) { q.Duplicate, e = spec.ParsePercent(v); return })
	parse("reorder", func(v string) (e error) { q.Reorder, e = spec.ParsePercent(v); return })
	parse("corrupt", func(v string) (e error) { q.Corrupt, e = spec.ParsePercent(v); return })
	if c.IsSet("limit") {
		q.Limit = c.Int("limit")
	}
	return err
}

func linkShow(c *cli.Context) error {
	if err := needArgs(c, 1, "LAB"); err != nil {
		return err
	}
	_, sh, _, err := labShaper(c, c.Args().First())
	if err != nil {
		return err
	}
	cur, err := sh.Show(c.Context)
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
	st, sh, s, err := labShaper(c, c.Args().Get(0))
	if err != nil {
		return err
	}
	if err := sh.SetUp(c.Context, c.Args().Get(1), up); err != nil {
		return err
	}
	word := map[bool]string{true: "up", false: "down"}[up]
	s.LogEvent(st.Lab, "link %s %s", c.Args().Get(1), word)
	fmt.Fprintf(os.Stderr, "link %s is %s\n", c.Args().Get(1), word)
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
			st, sh, s, err := labShaper(c, c.Args().Get(0))
			if err != nil {
				return err
			}
			var groups [][]string
			for _, g := range c.Args().Slice()[1:] {
				groups = append(groups, strings.Split(g, ","))
			}
			if err := sh.Partition(c.Context, groups); err != nil {
				return err
			}
			s.LogEvent(st.Lab, "partition %v", groups)
			fmt.Fprintf(os.Stderr, "partitioned %s into %v\n", st.Lab, groups)
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
			st, sh, s, err := labShaper(c, c.Args().Get(0))
			if err != nil {
				return err
			}
			if err := sh.Heal(c.Context); err != nil {
				return err
			}
			s.LogEvent(st.Lab, "heal")
			fmt.Fprintf(os.Stderr, "healed %s\n", st.Lab)
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
			_, sh, _, err := labShaper(c, c.Args().Get(0))
			if err != nil {
				return err
			}
			cap, ok := sh.(netfabric.Capturer)
			if !ok {
				return fmt.Errorf("the %s fabric cannot capture", sh.Name())
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
			err = cap.Capture(c.Context, c.Args().Get(1), out)
			if errors.Is(err, c.Context.Err()) {
				return nil
			}
			return err
		},
	}
}

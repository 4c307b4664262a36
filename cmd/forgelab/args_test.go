package main

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestHoistFlags(t *testing.T) {
	app := &cli.App{
		Flags: []cli.Flag{&cli.StringFlag{Name: "state-dir"}},
		Commands: []*cli.Command{
			{Name: "link", Subcommands: []*cli.Command{{Name: "set", Flags: []cli.Flag{
				&cli.StringFlag{Name: "delay"}, &cli.StringFlag{Name: "from"}, &cli.BoolFlag{Name: "clear"},
			}}}},
			{Name: "exec"},
		},
	}
	tests := []struct{ in, want string }{
		{"fl link set lab ab --delay 20ms", "fl link set --delay 20ms lab ab"},
		{"fl --state-dir /s link set lab ab --clear --from a", "fl --state-dir /s link set --clear --from a lab ab"},
		{"fl link set --delay=5ms lab ab", "fl link set --delay=5ms lab ab"},
		{"fl exec lab a -- ping -c 1 b", "fl exec lab a -- ping -c 1 b"},
		{"fl unknown --x y", "fl unknown --x y"},
	}
	for _, tt := range tests {
		got := strings.Join(hoistFlags(app, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("hoistFlags(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

package bench

// Slot is one run of a bench: a mode at a point, in a round.
type Slot struct {
	Mode   string
	Point  string // "" when the bench has no points
	Round  int    // from 1, counted separately for warm-up rounds
	Warmup bool
}

// Order returns the runs of a bench in the order they play: warmup rounds
// first, then runs rounds; each round runs every point and, within a point,
// every mode once, in file order (A B C A B C ...). Slow drift of the
// machine (heat, other work, a filling disk) then hits every mode and
// point alike instead of whichever ran last.
func Order(modes, points []string, runs, warmup int) []Slot {
	if len(points) == 0 {
		points = []string{""}
	}
	var out []Slot
	round := func(r int, w bool) {
		for _, p := range points {
			for _, m := range modes {
				out = append(out, Slot{Mode: m, Point: p, Round: r, Warmup: w})
			}
		}
	}
	for r := 1; r <= warmup; r++ {
		round(r, true)
	}
	for r := 1; r <= runs; r++ {
		round(r, false)
	}
	return out
}

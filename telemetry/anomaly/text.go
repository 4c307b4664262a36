package anomaly

import (
	"fmt"
	"io"
)

// WriteText prints findings for people: the flagged ones first, then
// (with all) every other verdict.
func WriteText(w io.Writer, run string, fs []Finding, all bool) error {
	n := 0
	for _, f := range fs {
		if f.Flagged {
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(w, "run %s: nothing flagged (%d series checked)\n", run, len(fs))
	} else {
		fmt.Fprintf(w, "run %s: %d flagged of %d series checked\n", run, n, len(fs))
	}
	for _, f := range fs {
		if f.Flagged {
			fmt.Fprintf(w, "FLAG %-11s %s: %s\n", f.Kind, f.Series, f.Text)
		}
	}
	if all {
		for _, f := range fs {
			if !f.Flagged {
				fmt.Fprintf(w, "ok   %-11s %s: %s\n", f.Kind, f.Series, f.Text)
			}
		}
	}
	_, err := fmt.Fprint(w)
	return err
}

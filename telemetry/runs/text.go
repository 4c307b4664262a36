package runs

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"
)

// WriteList prints runs as a table for people.
func WriteList(w io.Writer, runs []Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTATUS\tSCENARIO\tVARIANT\tSTARTED\tDURATION")
	for _, s := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name(), s.Status, dash(s.Scenario), dash(s.Variant),
			s.Start.Local().Format("2006-01-02 15:04:05"), duration(s.Start, s.End))
	}
	return tw.Flush()
}

// WriteShow prints a run's metadata, fingerprint and files for people.
func WriteShow(w io.Writer, r *Run) error {
	m := r.Meta
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("run", r.Name())
	row("folder", r.Dir)
	status := string(m.Status)
	if m.Reason != "" {
		status += " (" + m.Reason + ")"
	}
	row("status", status)
	row("scenario", m.Scenario)
	row("variant", m.Variant)
	row("started", m.Start.Format(time.RFC3339Nano))
	if !m.End.IsZero() {
		row("ended", m.End.Format(time.RFC3339Nano)+" ("+duration(m.Start, m.End)+")")
	}
	fp := m.Fingerprint
	row("kernel", fp.Kernel)
	if fp.CPUModel != "" || fp.Cores > 0 {
		row("cpu", fmt.Sprintf("%s, %d cores", fp.CPUModel, fp.Cores))
	}
	if fp.MemoryBytes > 0 {
		row("memory", fmt.Sprintf("%.1f GiB", float64(fp.MemoryBytes)/(1<<30)))
	}
	row("accel", fp.Accel)
	row("forgelab", join(fp.Version, fp.Commit, fp.GoVersion))
	for _, im := range fp.Images {
		row("image", im.Name+" "+im.Digest)
	}
	row("lab sha256", fp.LabSHA256)
	row("seed", strconv.FormatInt(fp.Seed, 10))
	keys := make([]string, 0, len(fp.Notes))
	for k := range fp.Notes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row("note "+k, fp.Notes[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tKIND\tROWS\tBYTES")
	for _, f := range m.Files {
		rows := "-"
		if f.Rows != nil {
			rows = strconv.FormatInt(*f.Rows, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", f.Path, f.Kind, rows, f.Bytes)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func join(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += " "
		}
		out += p
	}
	return out
}

func duration(start, end time.Time) string {
	if end.IsZero() {
		return "-"
	}
	return end.Sub(start).Round(100 * time.Millisecond).String()
}

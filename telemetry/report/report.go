package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/forgelab/forgelab/telemetry/compare"
)

// WritePNGs writes every figure as DIR/NAME.png (the directory is made)
// and returns the files written.
func WritePNGs(dir string, rep *compare.Report) ([]string, error) {
	figs, err := Figures(rep)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--png: %w", err)
	}
	var out []string
	for _, f := range figs {
		png, err := f.PNG()
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, fileName(f.Name)+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			return nil, fmt.Errorf("--png: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileName(s string) string { return unsafeName.ReplaceAllString(s, "_") }

// WriteHTMLFile writes the HTML report to path, through a temporary file
// so that a half-written report never replaces a whole one.
func WriteHTMLFile(path string, rep *compare.Report) error {
	var b bytes.Buffer
	if err := WriteHTML(&b, rep); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--html: %w", err)
	}
	return nil
}

// WriteHTML writes one self-contained page: runs, warnings, statements,
// the condition tables, the metrics, text fields, and every figure inline
// as SVG.
func WriteHTML(w io.Writer, rep *compare.Report) error {
	figs, err := Figures(rep)
	if err != nil {
		return err
	}
	type fig struct {
		Figure
		SVG template.HTML
	}
	var fs []fig
	for _, f := range figs {
		svg, err := f.SVG()
		if err != nil {
			return err
		}
		// gonum's SVG is well-formed markup it generated itself, with the
		// plot's text escaped.
		fs = append(fs, fig{Figure: f, SVG: template.HTML(svg)})
	}
	var text bytes.Buffer
	if err := compare.WriteText(&text, rep); err != nil {
		return err
	}
	data := struct {
		R     *compare.Report
		Base  compare.RunInfo
		Figs  []fig
		Text  string
		Title string
	}{R: rep, Base: rep.Runs[rep.Baseline], Figs: fs, Text: text.String()}
	data.Title = "forgelab compare: " + data.Base.Scenario
	return page.Execute(w, data)
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"bucket":   compare.BucketCell,
	"summary":  compare.SummaryCell,
	"change":   compare.ChangeCell,
	"segments": compare.SegmentsCell,
	"better":   compare.Better,
	"num":      compare.FormatFloat,
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; font-size: 0.9em; }
th { background: #f0f0f0; }
td.num { font-family: monospace; white-space: nowrap; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: 0.5em 1em; }
figure { margin: 1em 0; }
figcaption { font-size: 0.85em; color: #555; }
details pre { font-size: 0.8em; overflow-x: auto; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{len .R.Runs}} runs, aligned on scenario time {{num (index .R.Window 0)}}-{{num (index .R.Window 1)}} s; baseline <b>{{.Base.Label}}</b>.</p>
<table id="runs">
<tr><th>run</th><th>variant</th><th>status</th><th>recorded (s)</th><th>kernel</th><th>accel</th><th>forgelab</th></tr>
{{range $i, $r := .R.Runs}}<tr><td>{{$r.Name}}{{if eq $i $.R.Baseline}} (baseline){{end}}</td><td>{{$r.Label}}</td><td>{{$r.Status}}</td><td class="num">{{num $r.Duration}}</td><td>{{$r.Fingerprint.Kernel}}</td><td>{{$r.Fingerprint.Accel}}</td><td>{{$r.Fingerprint.Commit}}</td></tr>
{{end}}</table>
{{if .R.Warnings}}<div class="warn" id="warnings">{{range .R.Warnings}}<p>warning: {{.}}</p>{{end}}</div>{{end}}

{{if .R.Statements}}<h2>Under each condition</h2>
<p>Each run's median under a condition, as a share of its own best condition.</p>
<ul id="statements">{{range .R.Statements}}<li>{{.Text}}</li>
{{end}}</ul>{{end}}

{{if .R.Anomalies}}<h2>Flagged in a run</h2>
<p>Leaks, slow degradation and sudden drops, as <code>forgelab runs check</code> finds them (a drop the scenario causes on purpose is flagged too).</p>
<ul id="anomalies">{{range $a := .R.Anomalies}}{{range $a.Findings}}<li><b>{{$a.Run}}</b> {{.Kind}} {{.Series}}: {{.Text}}</li>
{{end}}{{end}}</ul>{{end}}

{{range $g := .R.Groupings}}<h2>By {{$g.Title}}</h2>
<table class="grouping">
<tr><th>metric</th><th>condition</th>{{range $.R.Runs}}<th>{{.Label}}</th>{{end}}</tr>
{{range $row := $g.Rows}}{{range $k, $grp := $g.Groups}}<tr><td>{{if eq $k 0}}{{$row.Metric}}{{end}}</td><td>{{$grp.Label}}</td>{{range $row.Runs}}<td class="num">{{bucket . $k $row.Direction}}</td>{{end}}</tr>
{{end}}{{end}}</table>
<p><small>Share of the run's best condition (marked *), median and number of samples.</small></p>
{{end}}

<h2>Plots</h2>
{{range .Figs}}<figure class="plot" id="fig-{{.Name}}">{{.SVG}}<figcaption>{{.Title}}: {{.Caption}}</figcaption></figure>
{{end}}

<h2>Metrics</h2>
<p>Median [95 % interval] over the window; change of the median against {{.Base.Label}} (~: the intervals overlap).</p>
<table id="metrics">
<tr><th>metric</th><th>better</th>{{range $i, $r := .R.Runs}}<th>{{$r.Label}}</th>{{if ne $i $.R.Baseline}}<th>change</th>{{end}}{{end}}</tr>
{{range $m := .R.Metrics}}<tr><td>{{$m.ID}}{{if $m.Unit}} ({{$m.Unit}}){{end}}</td><td>{{better $m.Direction}}</td>{{range $i, $mr := $m.Runs}}<td class="num">{{summary $mr.Summary}}</td>{{if ne $i $.R.Baseline}}<td class="num">{{change $mr}}</td>{{end}}{{end}}</tr>
{{end}}</table>

{{if .R.Texts}}<h2>Text fields that changed</h2>
<table id="texts">
<tr><th>field</th>{{range .R.Runs}}<th>{{.Label}}</th>{{end}}</tr>
{{range $t := .R.Texts}}<tr><td>{{$t.ID}}</td>{{range $t.Runs}}<td>{{segments .}}</td>{{end}}</tr>
{{end}}</table>{{end}}

<details><summary>As the terminal prints it</summary><pre>{{.Text}}</pre></details>
</body>
</html>
`

package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Workload is a demo load: a command run to completion on a host (an
// iperf3 client, a traffic generator, a benchmark driver).
type Workload struct {
	Name    string            // [A-Za-z0-9_.-]; names the output files
	Command string            // run by /bin/sh -c
	WorkDir string            // "" is the login directory
	Env     map[string]string // extra environment
	User    string            // run as this user (through root); "" is the login user
	Timeout time.Duration     // 0: until ctx ends
}

// Metric is one JSON object the workload printed, with the time forgelab
// received it.
type Metric struct {
	Time   time.Time      `json:"time"`
	Values map[string]any `json:"values"`
}

// WorkloadResult is what a workload did. A workload that exits non-zero or
// times out is a result, not an error: the run records it.
type WorkloadResult struct {
	Name        string    `json:"name"`
	ExitCode    int       `json:"exit_code"`
	TimedOut    bool      `json:"timed_out"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended"`
	Stdout      string    `json:"stdout"`  // file with everything it wrote to stdout
	Stderr      string    `json:"stderr"`  // file with its stderr
	Metrics     []Metric  `json:"-"`       // also written to MetricsFile, one per line
	MetricsFile string    `json:"metrics"` // NAME.metrics.jsonl
}

// Rendered returns the workload with Command, WorkDir and Env values
// rendered as templates over f.
func (w Workload) Rendered(f Facts) (Workload, error) {
	var err error
	r := func(field, text string) string {
		if err != nil || !strings.Contains(text, "{{") {
			return text
		}
		var out string
		out, err = Render("workload "+w.Name+" "+field, text, f)
		return out
	}
	out := w
	out.Command = r("command", w.Command)
	out.WorkDir = r("workdir", w.WorkDir)
	if w.Env != nil {
		out.Env = make(map[string]string, len(w.Env))
		for k, v := range w.Env {
			out.Env[k] = r("env "+k, v)
		}
	}
	return out, err
}

func (w Workload) script() (string, error) {
	if !serviceName.MatchString(w.Name) {
		return "", fmt.Errorf("workload name %q: use letters, digits, _ . - (at most 64)", w.Name)
	}
	if strings.TrimSpace(w.Command) == "" {
		return "", fmt.Errorf("workload %s: command is empty", w.Name)
	}
	if w.User != "" && !userName.MatchString(w.User) {
		return "", fmt.Errorf("workload %s: user %q is not a user name", w.Name, w.User)
	}
	env, err := envExports(w.Env)
	if err != nil {
		return "", fmt.Errorf("workload %s: %w", w.Name, err)
	}
	var b strings.Builder
	if w.WorkDir != "" {
		fmt.Fprintf(&b, "cd -- %s || exit 1\n", ShellQuote(w.WorkDir))
	}
	b.WriteString(env)
	// timeout makes its own process group (pgid = $$ after exec) and, when
	// the time is up, signals all of it, so children die too. The group is
	// announced on stderr for RunWorkload to end it when ctx is cancelled.
	// A duration of 0 means no limit.
	fmt.Fprintf(&b, "echo %s$$ >&2\n", pgidMarker)
	fmt.Fprintf(&b, "exec timeout -k 5 %.3f ", w.Timeout.Seconds())
	if w.User != "" {
		fmt.Fprintf(&b, "runuser -u %s -- ", ShellQuote(w.User))
	}
	b.WriteString("sh -c " + ShellQuote(w.Command) + "\n")
	return b.String(), nil
}

// RunWorkload runs w on the host to completion (or until its Timeout or ctx
// ends), keeping its stdout and stderr in outDir/NAME.stdout and
// NAME.stderr. Every stdout line that is a JSON object becomes a Metric;
// when no line is, but the whole of stdout is one JSON object (iperf3 -J),
// that object is the one metric.
func RunWorkload(ctx context.Context, c *Client, w Workload, outDir string) (WorkloadResult, error) {
	script, err := w.script()
	if err != nil {
		return WorkloadResult{}, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return WorkloadResult{}, fmt.Errorf("workload %s: %w", w.Name, err)
	}
	res := WorkloadResult{
		Name:        w.Name,
		Stdout:      filepath.Join(outDir, w.Name+".stdout"),
		Stderr:      filepath.Join(outDir, w.Name+".stderr"),
		MetricsFile: filepath.Join(outDir, w.Name+".metrics.jsonl"),
	}
	outF, err := os.Create(res.Stdout)
	if err != nil {
		return res, fmt.Errorf("workload %s: %w", w.Name, err)
	}
	defer outF.Close()
	errF, err := os.Create(res.Stderr)
	if err != nil {
		return res, fmt.Errorf("workload %s: %w", w.Name, err)
	}
	defer errF.Close()

	lines := &jsonLines{now: time.Now}
	// The script (its env values with it) goes on stdin: a command line is
	// every user's to read on the host (ps), and errors print it.
	cmd := "sh -s"
	if w.User != "" {
		cmd = asRoot(c, cmd)
	}
	if w.Timeout > 0 {
		// Backstop for a host that does not end the command itself.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.Timeout+15*time.Second)
		defer cancel()
	}
	res.Started = time.Now()
	pg := &pgidCatcher{w: errF}
	stdout, stderr := &gate{w: io.MultiWriter(outF, lines)}, &gate{w: pg}
	// Cancelled: end the whole process group first, or the session stays
	// open as long as anything in it runs.
	code, runErr := c.run(ctx, cmd, strings.NewReader(script), stdout, stderr, func() { killGroup(ctx, c, w.User != "", pg.pgid()) })
	stdout.close()
	stderr.close()
	res.Ended = time.Now()
	lines.flush()
	res.ExitCode = code
	res.TimedOut = w.Timeout > 0 && (code == 124 || code == 137)
	res.Metrics = lines.metrics
	if len(res.Metrics) == 0 {
		if m, ok := wholeJSON(res.Stdout, res.Ended); ok {
			res.Metrics = []Metric{m}
		}
	}
	if err := writeMetrics(res.MetricsFile, res.Metrics); err != nil {
		return res, fmt.Errorf("workload %s: %w", w.Name, err)
	}
	if runErr != nil {
		return res, fmt.Errorf("workload %s on %s: %w", w.Name, c.Target.Addr, runErr)
	}
	return res, nil
}

// jsonLines collects the JSON objects among the lines written to it.
type jsonLines struct {
	mu       sync.Mutex
	now      func() time.Time
	buf      []byte
	overflow bool // current line too long: skip to its end
	metrics  []Metric
}

const maxMetricLine = 1 << 20

func (j *jsonLines) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			j.append(p)
			break
		}
		j.append(p[:i])
		j.line()
		p = p[i+1:]
	}
	return n, nil
}

func (j *jsonLines) append(p []byte) {
	if j.overflow {
		return
	}
	if len(j.buf)+len(p) > maxMetricLine {
		j.overflow, j.buf = true, j.buf[:0]
		return
	}
	j.buf = append(j.buf, p...)
}

func (j *jsonLines) line() {
	if !j.overflow {
		if m, ok := parseMetric(j.buf, j.now()); ok {
			j.metrics = append(j.metrics, m)
		}
	}
	j.buf, j.overflow = j.buf[:0], false
}

func (j *jsonLines) flush() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.buf) > 0 || j.overflow {
		j.line()
	}
}

func parseMetric(line []byte, t time.Time) (Metric, bool) {
	line = bytes.TrimSpace(line)
	if len(line) < 2 || line[0] != '{' {
		return Metric{}, false
	}
	var v map[string]any
	if err := json.Unmarshal(line, &v); err != nil {
		return Metric{}, false
	}
	return Metric{Time: t, Values: v}, true
}

// wholeJSON reads a stdout file that is one (multi-line) JSON object.
func wholeJSON(file string, t time.Time) (Metric, bool) {
	fi, err := os.Stat(file)
	if err != nil || fi.Size() == 0 || fi.Size() > 64<<20 {
		return Metric{}, false
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return Metric{}, false
	}
	return parseMetric(data, t)
}

func writeMetrics(file string, ms []Metric) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, m := range ms {
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	return os.WriteFile(file, b.Bytes(), 0o644)
}

const pgidMarker = "forgelab-pgid="

// pgidCatcher passes stderr through, taking out the line that announces
// the workload's process group.
type pgidCatcher struct {
	mu    sync.Mutex
	w     io.Writer
	head  []byte
	done  bool
	group int
}

func (p *pgidCatcher) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return p.w.Write(b)
	}
	n := len(b)
	p.head = append(p.head, b...)
	i := bytes.IndexByte(p.head, '\n')
	if i < 0 && len(p.head) < 64 {
		return n, nil
	}
	p.done = true
	rest := p.head
	if i >= 0 && bytes.HasPrefix(p.head, []byte(pgidMarker)) {
		fmt.Sscanf(string(p.head[len(pgidMarker):i]), "%d", &p.group)
		rest = p.head[i+1:]
	}
	p.head = nil
	if len(rest) > 0 {
		if _, err := p.w.Write(rest); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (p *pgidCatcher) pgid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.group
}

// killGroup ends a cancelled workload's process group: closing the SSH
// session kills only its first process.
func killGroup(ctx context.Context, c *Client, root bool, pgid int) {
	if pgid <= 1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	cmd := fmt.Sprintf("kill -TERM -%[1]d 2>/dev/null; sleep 1; kill -KILL -%[1]d 2>/dev/null; true", pgid)
	if root {
		cmd = asRoot(c, cmd)
	}
	c.Output(ctx, cmd)
}

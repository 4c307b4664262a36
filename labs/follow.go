package labs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/provision"
)

// FollowLab writes every host's service logs and every workload's output
// to w, each line prefixed with its host and source ("a babeld | ...",
// "a workload alice | ...", "a workload alice stderr | ..."): the last
// lines lines of each (0: all), then, with follow, new lines as they come
// until ctx ends (Ctrl-C), when it returns nil once every follower has
// stopped. Services are followed over SSH on each host (journalctl, or
// tail of the log files without systemd), the remote followers ending
// with their sessions; workloads from their output files in the lab
// directory, including those a run starts later. A host that cannot be
// reached is reported on w and the others are followed.
func (m *Manager) FollowLab(ctx context.Context, lab string, lines int, follow bool, w io.Writer) error {
	st, err := m.Store.Load(lab)
	if err != nil {
		return err
	}
	if st.Plan == nil || st.Phase != store.PhaseReady {
		return fmt.Errorf("lab %s is %s, not ready: no logs to follow (forgelab inspect %s says more)", lab, st.Phase, lab)
	}
	out := &lineWriter{w: w}
	sp, _ := recordedSpec(st)
	var wg sync.WaitGroup
	for _, h := range st.Plan.Hosts {
		if sp != nil && !slices.ContainsFunc(sp.Services, func(s ServiceSpec) bool { return spec.OnHost(s.Hosts, h.Name) }) {
			continue // no service on this host: nothing in its journal of ours
		}
		wg.Add(1)
		go func(host string) {
			defer wg.Done()
			if err := m.hostLogs(ctx, st, host, lines, follow, out); err != nil && ctx.Err() == nil {
				out.line(host + " forgelab | cannot follow its services: " + err.Error())
			}
		}(h.Name)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tailWorkloads(ctx, m.Store.LayoutOf(st).Workloads(), lines, follow, out)
	}()
	wg.Wait()
	return nil
}

// hostLogs writes one host's services' log, as `forgelab logs LAB HOST`
// shows it, each line prefixed.
func (m *Manager) hostLogs(ctx context.Context, st *State, host string, lines int, follow bool, out *lineWriter) error {
	r, err := m.software().Connect(ctx, st, host)
	if err != nil {
		return err
	}
	defer r.Close()
	sm, err := r.Services(ctx, m.serviceOptions(nil, host))
	if err != nil {
		return err
	}
	pw := &prefixWriter{out: out, host: host, parse: tailSource}
	if sm.Manager() == provision.ManagerSystemd {
		pw.parse = journalSource
	}
	defer pw.Flush()
	return sm.Logs(ctx, "", lines, follow, pw)
}

// lineWriter writes whole lines to w, one caller at a time.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, s+"\n")
}

// prefixWriter splits what it is given into lines and writes each with
// "HOST SOURCE | " in front, the source read from the line by parse.
type prefixWriter struct {
	out   *lineWriter
	host  string
	parse func(line, last string) (string, bool) // the source of line (last: the previous line's), and whether to show it
	last  string
	buf   []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.emit(string(p.buf[:i]))
		p.buf = p.buf[i+1:]
	}
}

// Flush writes a last line that had no newline.
func (p *prefixWriter) Flush() {
	if len(p.buf) > 0 {
		p.emit(string(p.buf))
		p.buf = nil
	}
}

func (p *prefixWriter) emit(line string) {
	src, show := p.parse(line, p.last)
	p.last = src
	if !show {
		return // a header, not a line of a log
	}
	p.out.line(p.host + " " + src + " | " + strings.TrimRight(line, "\r"))
}

// journalSource is the source of a line in journalctl's short-iso
// format ("2026-12-02T02:30:00+0000 a babeld[1234]: ..."): the program
// that wrote it. A line that is not one (a continuation) keeps the last.
func journalSource(line, last string) (string, bool) {
	f := strings.Fields(line)
	if len(f) >= 3 && strings.HasSuffix(f[2], ":") {
		id := strings.TrimSuffix(f[2], ":")
		if i := strings.IndexByte(id, '['); i > 0 {
			id = id[:i]
		}
		return id, true
	}
	return cmpOr(last, "service"), true
}

// tailSource is the source of a line of tail over the services' log
// files (hosts without systemd): a "==> .../services/NAME/log <==" header
// names the service of the lines after it and is not shown itself.
func tailSource(line, last string) (string, bool) {
	if strings.HasPrefix(line, "==> ") && strings.HasSuffix(line, " <==") {
		path := strings.TrimSuffix(strings.TrimPrefix(line, "==> "), " <==")
		return filepath.Base(filepath.Dir(path)), false
	}
	if line == "" && last == "" {
		return "", false
	}
	return cmpOr(last, "service"), true
}

func cmpOr(s, or string) string {
	if s == "" {
		return or
	}
	return s
}

// tailWorkloads writes the lines of every workload output file under dir
// (NAME/HOST/NAME.stdout and .stderr): the last lines of each (0: all),
// then with follow, new lines as they are written, until ctx ends. A file
// that is replaced or truncated (the workload ran again) is read from its
// start.
func tailWorkloads(ctx context.Context, dir string, lines int, follow bool, out *lineWriter) {
	type pos struct {
		off  int64
		ino  uint64
		part []byte
	}
	seen := map[string]*pos{}
	first := true
	for {
		paths, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*.std*"))
		slices.Sort(paths)
		for _, p := range paths {
			rel, _ := filepath.Rel(dir, p)
			parts := strings.Split(rel, string(filepath.Separator))
			name, host, file := parts[0], parts[1], parts[2]
			stream := strings.TrimPrefix(filepath.Ext(file), ".")
			if file != name+"."+stream || (stream != "stdout" && stream != "stderr") {
				continue
			}
			fi, err := os.Stat(p)
			if err != nil {
				continue
			}
			var ino uint64
			if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
				ino = sys.Ino
			}
			ps := seen[p]
			if ps == nil || ps.ino != ino || fi.Size() < ps.off {
				ps = &pos{ino: ino}
				seen[p] = ps
			}
			if fi.Size() == ps.off {
				continue
			}
			data, err := readFrom(p, ps.off)
			if err != nil {
				continue
			}
			ps.off += int64(len(data))
			data = append(ps.part, data...)
			end := bytes.LastIndexByte(data, '\n') + 1
			ps.part = slices.Clone(data[end:])
			text := strings.Split(strings.TrimSuffix(string(data[:end]), "\n"), "\n")
			if end == 0 {
				text = nil
			}
			if first && lines > 0 && len(text) > lines {
				text = text[len(text)-lines:]
			}
			prefix := host + " workload " + name
			if stream == "stderr" {
				prefix += " stderr"
			}
			for _, l := range text {
				out.line(prefix + " | " + l)
			}
		}
		first = false
		if !follow {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func readFrom(path string, off int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(bufio.NewReader(f))
}

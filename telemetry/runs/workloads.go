package runs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"time"
)

// Stream is which output of a workload a line came from.
type Stream string

const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Keys forgelab puts first in each line of a workload's .jsonl. A key of
// the workload's own that collides is kept with this prefix.
const (
	keyTime        = "time"
	keyT           = "t"
	collidedPrefix = "workload_"
)

// workloadBase is workloads/<host>-<name>, the stem of a workload's files.
func workloadBase(host, name string) (string, error) {
	if err := checkName("host", host); err != nil {
		return "", err
	}
	if err := checkName("workload", name); err != nil {
		return "", err
	}
	return path.Join(WorkloadsDir, host+"-"+name), nil
}

// WorkloadLine records one line a workload printed, as forgelab read it
// at at (zero: now). Every line goes to the raw .stdout or .stderr file; a
// stdout line that is a JSON object also goes to the .jsonl file, with
// "time" and "t" of the moment it was read put first.
func (r *Recorder) WorkloadLine(at time.Time, host, name string, stream Stream, line []byte) error {
	base, err := workloadBase(host, name)
	if err != nil {
		return fmt.Errorf("record workload line: %w", err)
	}
	kind := KindStdout
	switch stream {
	case Stdout:
	case Stderr:
		kind = KindStderr
	default:
		return fmt.Errorf("record workload line: stream %q: want stdout or stderr", stream)
	}
	line = bytes.TrimRight(line, "\r\n")
	if bytes.IndexByte(line, '\n') >= 0 {
		return fmt.Errorf("record workload line: %s/%s: pass one line at a time", host, name)
	}
	raw, err := r.lazySink(File{Path: base + "." + string(stream), Kind: kind, Host: host, Name: name})
	if err != nil {
		return err
	}
	if err := raw.appendLine(line); err != nil {
		return err
	}
	if stream != Stdout {
		return nil
	}
	at, t := r.stamp(at)
	rec, ok := workloadRecord(at, t, line)
	if !ok {
		return nil // not a metrics line: it is in the raw file
	}
	js, err := r.lazySink(File{Path: base + ".jsonl", Kind: KindWorkload, Host: host, Name: name})
	if err != nil {
		return err
	}
	return js.appendLine(rec)
}

// workloadRecord turns a JSON object line into {"time":..,"t":..,...its
// keys in their order}; ok is false for anything else.
func workloadRecord(at time.Time, t float64, line []byte) ([]byte, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' || !json.Valid(line) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // '{'
		return nil, false
	}
	var b bytes.Buffer
	tj, _ := json.Marshal(at.UTC().Format(timeLayout))
	b.WriteString(`{"` + keyTime + `":`)
	b.Write(tj)
	b.WriteString(`,"` + keyT + `":` + formatFloat(t))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, false
		}
		if key == keyTime || key == keyT {
			key = collidedPrefix + key
		}
		kj, _ := json.Marshal(key)
		b.WriteByte(',')
		b.Write(kj)
		b.WriteByte(':')
		if err := json.Compact(&b, val); err != nil {
			return nil, false
		}
	}
	b.WriteByte('}')
	return b.Bytes(), true
}

package runs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// SaveLab keeps the lab file as run, and its sha256 in the fingerprint.
func (r *Recorder) SaveLab(src []byte) error {
	r.mu.Lock()
	r.meta.Fingerprint.LabSHA256 = sha256Hex(src)
	r.dirty = true
	r.mu.Unlock()
	return r.addFile(File{Path: LabFile, Kind: KindInput}, bytes.NewReader(src))
}

// SaveScenario keeps the scenario file as run.
func (r *Recorder) SaveScenario(src []byte) error {
	return r.addFile(File{Path: ScenarioFile, Kind: KindInput}, bytes.NewReader(src))
}

// SavePlan keeps the lab's plan, already encoded as JSON.
func (r *Recorder) SavePlan(planJSON []byte) error {
	return r.addFile(File{Path: PlanFile, Kind: KindInput}, bytes.NewReader(planJSON))
}

// CopySerial copies a VM's serial console log into serial/<host>.log.
func (r *Recorder) CopySerial(host, src string) error {
	if err := checkName("host", host); err != nil {
		return fmt.Errorf("copy serial log: %w", err)
	}
	return r.copyFile(File{Path: path.Join(SerialDir, host+".log"), Kind: KindSerial, Host: host}, src)
}

// CopyServiceLog copies a service's log into services/<host>-<name>.log.
func (r *Recorder) CopyServiceLog(host, name, src string) error {
	if err := checkName("host", host); err != nil {
		return fmt.Errorf("copy service log: %w", err)
	}
	if err := checkName("service", name); err != nil {
		return fmt.Errorf("copy service log: %w", err)
	}
	return r.copyFile(File{Path: path.Join(ServicesDir, host+"-"+name+".log"), Kind: KindService, Host: host, Name: name}, src)
}

// CopyPcap copies a capture into pcaps/<name>.pcap.
func (r *Recorder) CopyPcap(name, src string) error {
	f, err := pcapFile(name)
	if err != nil {
		return err
	}
	return r.copyFile(f, src)
}

// PcapWriter opens pcaps/<name>.pcap for a capture to stream into (a
// netfabric.Capturer writes there); close it when the capture ends.
func (r *Recorder) PcapWriter(name string) (io.WriteCloser, error) {
	f, err := pcapFile(name)
	if err != nil {
		return nil, err
	}
	w, err := r.createFile(f)
	if err != nil {
		return nil, err
	}
	return w, nil
}

func pcapFile(name string) (File, error) {
	name = strings.TrimSuffix(name, ".pcap")
	if err := checkName("capture", name); err != nil {
		return File{}, fmt.Errorf("copy pcap: %w", err)
	}
	return File{Path: path.Join(PcapsDir, name+".pcap"), Kind: KindPcap, Name: name}, nil
}

func (r *Recorder) copyFile(f File, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s into run: %w", src, err)
	}
	defer in.Close()
	return r.addFile(f, in)
}

// addFile writes a whole file into the run folder.
func (r *Recorder) addFile(f File, src io.Reader) error {
	w, err := r.createFile(f)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, src); err != nil {
		w.Close()
		return fmt.Errorf("copy %s into run: %w", f.Path, err)
	}
	return w.Close()
}

// createFile makes a new file of the run folder and lists it; its size
// and lines are taken when run.json is next written.
func (r *Recorder) createFile(f File) (*os.File, error) {
	// Under the lock, so that a file is either in Close's final list or
	// refused with ErrClosed.
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return nil, ErrClosed
	}
	p := filepath.Join(r.dir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(p), dirMode); err != nil {
		return nil, fmt.Errorf("copy %s into run: %w", f.Path, err)
	}
	out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fileMode)
	if err != nil {
		return nil, fmt.Errorf("copy %s into run: %w (each file is copied in once)", f.Path, err)
	}
	r.copied = append(r.copied, f)
	r.dirty = true
	return out, nil
}

// statFile fills in a copied file's size, and its lines for text.
func statFile(dir string, f File) File {
	p := filepath.Join(dir, filepath.FromSlash(f.Path))
	st, err := os.Stat(p)
	if err != nil {
		return f
	}
	f.Bytes = st.Size()
	if f.Kind == KindPcap {
		return f
	}
	if n, err := countLines(p); err == nil {
		f.Rows = &n
	}
	return f
}

// countLines counts lines, a last line without a newline included.
func countLines(p string) (int64, error) {
	n, partial, _, err := scanLines(p)
	if partial {
		n++
	}
	return n, err
}

// scanLines counts the newlines of a file, and tells whether it ends in
// a line without one; it streams, so a large table costs no memory.
func scanLines(p string) (newlines int64, partial bool, size int64, err error) {
	in, err := os.Open(p)
	if err != nil {
		return 0, false, 0, err
	}
	defer in.Close()
	buf := make([]byte, 64<<10)
	last := byte('\n')
	for {
		k, err := in.Read(buf)
		if k > 0 {
			newlines += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
			size += int64(k)
		}
		if err == io.EOF {
			return newlines, last != '\n', size, nil
		}
		if err != nil {
			return 0, false, 0, err
		}
	}
}

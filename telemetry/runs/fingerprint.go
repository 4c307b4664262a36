package runs

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
)

// HostFingerprint fills in what this machine and this binary can tell
// about themselves: kernel, CPU model, cores, memory, forgelab's version,
// commit and Go version. The caller adds the accelerator, images, lab
// digest, seed and notes.
func HostFingerprint() Fingerprint {
	fp := Fingerprint{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		fp.Kernel = strings.TrimSpace(string(b))
	}
	fp.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		n, _ := strconv.ParseInt(strings.TrimSuffix(kb, " kB"), 10, 64)
		fp.MemoryBytes = n * 1024
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		fp.Version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				fp.Commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					fp.Commit += "+dirty"
				}
			}
		}
	}
	return fp
}

// fillHost sets the fields HostFingerprint knows where fp leaves them
// empty, so every run says what it ran on even if the caller forgot.
func (fp *Fingerprint) fillHost() {
	h := HostFingerprint()
	for _, f := range []struct{ dst, src *string }{
		{&fp.Kernel, &h.Kernel}, {&fp.CPUModel, &h.CPUModel}, {&fp.Version, &h.Version},
		{&fp.Commit, &h.Commit}, {&fp.GoVersion, &h.GoVersion},
	} {
		if *f.dst == "" {
			*f.dst = *f.src
		}
	}
	if fp.Cores == 0 {
		fp.Cores = h.Cores
	}
	if fp.MemoryBytes == 0 {
		fp.MemoryBytes = h.MemoryBytes
	}
}

// procField returns the value of the first "key: value" line of a /proc
// file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Differences lists how two fingerprints differ in what can change a
// measurement (kernel, CPU, cores, memory, accelerator, forgelab commit,
// Go version, images), one sentence each, for compare's warnings. The lab
// digest and seed are left out: comparing variants of a lab is the point.
func (a Fingerprint) Differences(b Fingerprint) []string {
	var out []string
	diff := func(what, x, y string) {
		if x != y {
			out = append(out, what+": "+orUnknown(x)+" vs "+orUnknown(y))
		}
	}
	diff("kernel", a.Kernel, b.Kernel)
	diff("CPU", a.CPUModel, b.CPUModel)
	diff("cores", strconv.Itoa(a.Cores), strconv.Itoa(b.Cores))
	diff("memory", strconv.FormatInt(a.MemoryBytes, 10), strconv.FormatInt(b.MemoryBytes, 10))
	diff("accelerator", a.Accel, b.Accel)
	diff("forgelab commit", a.Commit, b.Commit)
	diff("Go", a.GoVersion, b.GoVersion)
	diff("images", imageList(a.Images), imageList(b.Images))
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func imageList(is []Image) string {
	s := make([]string, len(is))
	for i, im := range is {
		s[i] = im.Name + "@" + im.Digest
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

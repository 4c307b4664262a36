package tomlfile

import (
	"fmt"
	"strings"
)

// KeyLines maps position paths ("lab.name", "host[1]", "host[1].memory",
// "link[0].addresses") to the line they are written on. The toml library
// exposes no positions per [[host]], so the source is scanned for table
// headers and `key =` lines, which is all a lab file needs.
type KeyLines map[string]int

// Scan finds the line of every table header and key in src.
func Scan(src string) KeyLines {
	kl := KeyLines{}
	arrays := map[string]int{} // [[name]] -> how many so far
	table := ""
	inString := false // inside a multi-line string
	for i, raw := range strings.Split(strings.TrimPrefix(src, "\ufeff"), "\n") {
		line := strings.TrimSpace(raw)
		odd := strings.Count(line, `"""`)%2 == 1 || strings.Count(line, `'''`)%2 == 1
		if inString {
			inString = !odd
			continue
		}
		inString = odd // the key that opens it still counts
		switch {
		case strings.HasPrefix(line, "[["):
			name := headerName(line[2:], "]]")
			arrays[name]++
			table = fmt.Sprintf("%s[%d]", name, arrays[name]-1)
			kl.add(table, i+1)
		case strings.HasPrefix(line, "["):
			table = indexArrays(headerName(line[1:], "]"), arrays)
			kl.add(table, i+1)
		default:
			if key, ok := lineKey(line); ok {
				kl.add(JoinPath(table, key), i+1)
			}
		}
	}
	return kl
}

// add records path and those of its parents not seen yet.
func (kl KeyLines) add(path string, line int) {
	for p := path; p != ""; p = parentPath(p) {
		if _, ok := kl[p]; !ok {
			kl[p] = line
		}
	}
}

// Find returns the line of path or of its nearest recorded parent.
func (kl KeyLines) Find(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if line, ok := kl[p]; ok {
			return line
		}
	}
	return 0
}

// JoinPath appends key to a position path.
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	if key == "" {
		return path
	}
	return path + "." + key
}

// parentPath: "host[2].ssh" -> "host[2]" -> "host" -> "".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		return p[:strings.LastIndex(p, "[")]
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

// headerName reads the name of a table header up to end: "host.ssh] # x"
// -> "host.ssh".
func headerName(s, end string) string {
	name, _, _ := strings.Cut(s, end)
	return normalizeKey(name)
}

// indexArrays points a sub-table header into the current element of an
// array of tables: "host.ssh" -> "host[2].ssh".
func indexArrays(name string, arrays map[string]int) string {
	first, rest, _ := strings.Cut(name, ".")
	if n := arrays[first]; n > 0 {
		return JoinPath(fmt.Sprintf("%s[%d]", first, n-1), rest)
	}
	return name
}

// lineKey returns the key of a `key = value` line.
func lineKey(line string) (string, bool) {
	key, _, ok := strings.Cut(line, "=")
	if !ok || strings.TrimSpace(key) == "" {
		return "", false
	}
	if strings.ContainsFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z') && !(r >= '0' && r <= '9') && !(r >= 'A' && r <= 'Z') && !strings.ContainsRune(`_-."' `, r)
	}) {
		return "", false
	}
	return normalizeKey(key), true
}

// normalizeKey turns ` "ssh" . port ` into "ssh.port".
func normalizeKey(key string) string {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

package images

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// A tiny, deterministic YAML emitter for the documents cloud-init reads.
// go.mod carries no YAML library, and the documents are small and fixed in
// shape, so they are modelled as ordered maps, sequences and scalars and
// written here. Strings are emitted plain only when that cannot change their
// meaning under YAML 1.1 (which PyYAML, and so cloud-init, implements);
// everything else is double-quoted.

// ymap is a mapping whose keys keep the order they were added in.
type ymap []ykv

type ykv struct {
	k string
	v any // string, bool, int, int64, yliteral, ymap, yseq
}

// yseq is a block sequence.
type yseq []any

// yliteral is a multi-line string written as a literal block scalar (|).
type yliteral string

func (m *ymap) add(k string, v any) { *m = append(*m, ykv{k, v}) }

// yamlDoc renders v (normally a ymap) as a YAML document, optionally preceded
// by a header line such as "#cloud-config".
func yamlDoc(header string, v any) ([]byte, error) {
	var b bytes.Buffer
	if header != "" {
		b.WriteString(header)
		b.WriteByte('\n')
	}
	if err := emitBlock(&b, v, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// emitBlock writes a mapping or sequence at the given indentation, one entry
// per line. Scalars at top level are written on their own line.
func emitBlock(b *bytes.Buffer, v any, indent int) error {
	pad := strings.Repeat(" ", indent)
	switch t := v.(type) {
	case ymap:
		for _, kv := range t {
			if !plainSafe(kv.k) {
				return fmt.Errorf("yaml: key %q is not a plain key", kv.k)
			}
			b.WriteString(pad)
			b.WriteString(kv.k)
			b.WriteByte(':')
			if err := emitValue(b, kv.v, indent); err != nil {
				return fmt.Errorf("%s: %w", kv.k, err)
			}
		}
	case yseq:
		for _, item := range t {
			b.WriteString(pad)
			b.WriteByte('-')
			if m, ok := item.(ymap); ok && len(m) > 0 {
				// First key on the dash line, the rest aligned under it.
				var inner bytes.Buffer
				if err := emitBlock(&inner, m, indent+2); err != nil {
					return err
				}
				b.WriteByte(' ')
				b.Write(inner.Bytes()[indent+2:])
				continue
			}
			if err := emitValue(b, item, indent); err != nil {
				return err
			}
		}
	default:
		s, err := scalar(v)
		if err != nil {
			return err
		}
		b.WriteString(pad)
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return nil
}

// emitValue writes what follows "key:" or "-": a scalar on the same line, or
// a newline and a nested block indented by two more spaces.
func emitValue(b *bytes.Buffer, v any, indent int) error {
	switch t := v.(type) {
	case ymap:
		if len(t) == 0 {
			b.WriteString(" {}\n")
			return nil
		}
		b.WriteByte('\n')
		return emitBlock(b, t, indent+2)
	case yseq:
		if len(t) == 0 {
			b.WriteString(" []\n")
			return nil
		}
		b.WriteByte('\n')
		return emitBlock(b, t, indent+2)
	case yliteral:
		return emitLiteral(b, string(t), indent+2)
	default:
		s, err := scalar(v)
		if err != nil {
			return err
		}
		b.WriteByte(' ')
		b.WriteString(s)
		b.WriteByte('\n')
		return nil
	}
}

// emitLiteral writes s as a literal block scalar, or double-quoted when a
// literal block cannot represent it exactly.
func emitLiteral(b *bytes.Buffer, s string, indent int) error {
	body := strings.TrimSuffix(s, "\n")
	ok := body != "" && !strings.HasSuffix(body, "\n") && utf8.ValidString(s) &&
		!strings.HasPrefix(body, " ") && !strings.HasPrefix(body, "\t")
	for _, r := range body {
		if r != '\n' && (r < 0x20 || r == 0x7f || r == 0xfeff) {
			ok = false
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.TrimRight(line, " \t") != line || line == "" {
			ok = false // trailing blanks or empty lines: keep them exact via quoting
		}
	}
	if !ok {
		q, err := quote(s)
		if err != nil {
			return err
		}
		b.WriteByte(' ')
		b.WriteString(q)
		b.WriteByte('\n')
		return nil
	}
	if strings.HasSuffix(s, "\n") {
		b.WriteString(" |\n")
	} else {
		b.WriteString(" |-\n")
	}
	pad := strings.Repeat(" ", indent)
	for _, line := range strings.Split(body, "\n") {
		b.WriteString(pad)
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return nil
}

func scalar(v any) (string, error) {
	switch t := v.(type) {
	case string:
		if plainSafe(t) {
			return t, nil
		}
		return quote(t)
	case bool:
		if t {
			return "true", nil
		}
		return "false", nil
	case int:
		return fmt.Sprint(t), nil
	case int64:
		return fmt.Sprint(t), nil
	default:
		return "", fmt.Errorf("yaml: unsupported value type %T", v)
	}
}

// yaml11Words are plain scalars that YAML 1.1 resolves to booleans or null.
var yaml11Words = map[string]bool{
	"y": true, "yes": true, "n": true, "no": true, "true": true, "false": true,
	"on": true, "off": true, "null": true, "~": true,
}

// plainSafe reports whether s can be written without quotes and still be read
// back as the same string. Deliberately narrow: it must start with a letter or
// '/', and contain only letters, digits and "_./-". That excludes numbers,
// MAC addresses (sexagesimal in YAML 1.1), IP addresses, and anything with
// ':' '#' or spaces.
func plainSafe(s string) bool {
	if s == "" || yaml11Words[strings.ToLower(s)] {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '/':
		case i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'):
		default:
			return false
		}
	}
	return true
}

// quote writes s as a YAML double-quoted scalar.
func quote(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("yaml: string is not valid UTF-8: %q", s)
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			switch {
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

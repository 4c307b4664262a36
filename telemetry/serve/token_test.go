package serve_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgelab/forgelab/telemetry/serve"
)

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content string
		mode          os.FileMode
		want, err     string
	}{
		{"good", "0123456789abcdef-token\n", 0o600, "0123456789abcdef-token", ""},
		{"first line only", "  0123456789abcdef  \nsecond\n", 0o400, "0123456789abcdef", ""},
		{"short", "short\n", 0o600, "", "at least 16"},
		{"empty", "", 0o600, "", "at least 16"},
		{"readable by others", "0123456789abcdef-token\n", 0o644, "", "chmod 600"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if err := os.WriteFile(p, []byte(c.content), c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, c.mode); err != nil {
				t.Fatal(err)
			}
			got, err := serve.ReadTokenFile(p)
			if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) || got != c.want {
				t.Errorf("= %q, %v; want %q, %q", got, err, c.want, c.err)
			}
		})
	}
	if _, err := serve.ReadTokenFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "--token-file") {
		t.Errorf("missing file: %v", err)
	}
}

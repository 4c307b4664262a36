package tomlfile

import "testing"

func TestParseKeyLines(t *testing.T) {
	src := `# comment = 1
[lab]
name = "x"
[[host]]
name = "a"
notes = """
fake = "not a key"
"""
[[host]]
"name" = "b"
ssh.port = 22
[host.ssh]
address = "192.0.2.1"
[[link]]  # trailing comment
addresses = { a = "10.1.0.1/24" }
`
	kl := Scan(src)
	tests := []struct {
		path string
		want int
	}{
		{"lab", 2},
		{"lab.name", 3},
		{"host", 4},
		{"host[0]", 4},
		{"host[0].name", 5},
		{"host[0].notes", 6},
		{"host[0].fake", 4}, // inside a multi-line string: falls back to the table
		{"host[1]", 9},
		{"host[1].name", 10},
		{"host[1].ssh.port", 11},
		{"host[1].ssh", 11},
		{"host[1].ssh.address", 13},
		{"link[0]", 14},
		{"link[0].addresses.a", 15},
		{"link[0].endpoints", 14},
		{"comment", 0},
		{"nothing", 0},
	}
	for _, tt := range tests {
		if got := kl.Find(tt.path); got != tt.want {
			t.Errorf("line of %s = %d, want %d", tt.path, got, tt.want)
		}
	}
}

package images

import "testing"

func TestYAMLScalars(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"mgmt", "mgmt"},
		{"/bin/bash", "/bin/bash"},
		{"C.UTF-8", "C.UTF-8"},
		{"true", `"true"`}, // YAML 1.1 booleans stay strings
		{"No", `"No"`},
		{"off", `"off"`},
		{"null", `"null"`},
		{"", `""`},
		{"52:54:00:12:34:56", `"52:54:00:12:34:56"`}, // sexagesimal in YAML 1.1
		{"10.0.0.1/24", `"10.0.0.1/24"`},
		{"1e3", `"1e3"`},
		{"0x10", `"0x10"`},
		{"-rf", `"-rf"`},
		{"a b", `"a b"`},
		{"a: b", `"a: b"`},
		{"# x", `"# x"`},
		{`q"uote\`, `"q\"uote\\"`},
		{"tab\tnl\n", `"tab\tnl\n"`},
		{"bell\x07", `"bell\x07"`},
		{"ünïcode", `"ünïcode"`},
		{true, "true"},
		{false, "false"},
		{2, "2"},
	} {
		got, err := scalar(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("scalar(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	if _, err := scalar("\xff"); err == nil {
		t.Errorf("invalid UTF-8 accepted")
	}
}

func TestYAMLDocument(t *testing.T) {
	var inner ymap
	inner.add("k", "v")
	inner.add("num", 1)
	var doc ymap
	doc.add("list", yseq{"a", inner, yseq{"x"}})
	doc.add("empty_list", yseq{})
	doc.add("empty_map", ymap{})
	doc.add("lit", yliteral("line 1\nline 2\n"))
	doc.add("lit_nonl", yliteral("only"))
	doc.add("lit_quoted", yliteral(" leading space\n"))
	got, err := yamlDoc("#cloud-config", doc)
	if err != nil {
		t.Fatal(err)
	}
	want := `#cloud-config
list:
  - a
  - k: v
    num: 1
  -
    - x
empty_list: []
empty_map: {}
lit: |
  line 1
  line 2
lit_nonl: |-
  only
lit_quoted: " leading space\n"
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	var bad ymap
	bad.add("not a key", 1)
	if _, err := yamlDoc("", bad); err == nil {
		t.Errorf("a key needing quotes was accepted")
	}
}

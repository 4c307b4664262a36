package images

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kdomanski/iso9660"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// A fixed host key, so the golden files are stable (never used anywhere).
const testHostKeyPrivate = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBFb3JnZWxhYi10ZXN0LWhvc3Qta2V5LW5vdC1yZWFsAAAAkGZvcmdlbGFi
Zm9yZ2VsYWIAAAALc3NoLWVkMjU1MTkAAAAgRW9yZ2VsYWItdGVzdC1ob3N0LWtleS1ub3
QtcmVhbAAAAEBmb3JnZWxhYi10ZXN0LWhvc3Qta2V5LW5vdC1yZWFsRW9yZ2VsYWItdGVz
dC1ob3N0LWtleS1ub3QtcmVhbAAAAAhmb3JnZWxhYgECAwQFBgc=
-----END OPENSSH PRIVATE KEY-----
`

const testHostKeyPublic = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEVvcmdlbGFiLXRlc3QtaG9zdC1rZXktbm90LXJlYWw forgelab-host-a"

// testSeed is a VM with three NICs: management by DHCP, and two data NICs
// with static IPv4 and IPv6 addresses (one with a gateway and DNS).
func testSeed() Seed {
	return Seed{
		InstanceID: "fl-ab12-a-0001",
		Hostname:   "a",
		User:       "lab",
		// HashPassword(`pa"ss: #word`) with the salt "forgelabtest"
		PasswordHash: "$6$forgelabtest$9ww1GIA7nUgxiKL7CHvtempJaoyHO5X9qT6MfKQRc5WGXr2kfZyvsI0wtIbmTDbUgehxYpTs7.sC5g2a7H7A70",
		AuthorizedKeys: []string{
			"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZvcmdlbGFiLWxhYi1rZXktZm9yLXRlc3RzLW9ubHk forgelab-lab-ab12",
		},
		HostKeyPrivate: testHostKeyPrivate,
		HostKeyPublic:  testHostKeyPublic,
		EtcHosts:       "10.10.1.1\ta a.handover.lab\n10.10.1.2\tb b.handover.lab\n",
		NICs: []SeedNIC{
			{Name: "mgmt", MAC: "52:54:00:AB:12:01", DHCP4: true},
			{Name: "eth1", MAC: "52:54:00:ab:12:02", Addresses: []string{"10.10.1.1/24", "fd00:10:1::1/64"}},
			{Name: "eth2", MAC: "52:54:00:ab:12:03", Addresses: []string{"10.10.2.1/24", "fd00:10:2::1/64"},
				Gateway4: "10.10.2.254", Nameservers: []string{"10.10.2.254", "fd00:10:2::fe"}},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

func TestSeedGolden(t *testing.T) {
	s := testSeed()
	for _, tc := range []struct {
		name string
		fn   func() ([]byte, error)
	}{
		{"meta-data", s.MetaData},
		{"user-data", s.UserData},
		{"network-config", s.NetworkConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.fn()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, got)
		})
	}
}

// TestSeedParsesAsIntended reads the documents back with PyYAML, the parser
// cloud-init uses, and compares the data (not the text) with what was meant.
func TestSeedParsesAsIntended(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import yaml").Run() != nil {
		msg := "python3 with PyYAML, the YAML reader cloud-init uses, is not installed: apt-get install python3-yaml"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := testSeed()
	ud, _ := s.UserData()
	nc, _ := s.NetworkConfig()
	md, _ := s.MetaData()
	parse := func(doc []byte) any {
		cmd := exec.Command(py, "-c", "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))")
		cmd.Stdin = bytes.NewReader(doc)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("PyYAML rejects:\n%s\n%v", doc, err)
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := func(js string) any {
		var v any
		if err := json.Unmarshal([]byte(js), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !strings.HasPrefix(string(ud), "#cloud-config\n") {
		t.Errorf("user-data does not start with #cloud-config")
	}
	checks := []struct {
		name string
		doc  []byte
		want string
	}{
		{"meta-data", md, `{"instance-id": "fl-ab12-a-0001", "local-hostname": "a"}`},
		{"user-data", ud, `{
			"hostname": "a", "preserve_hostname": false, "manage_etc_hosts": "localhost", "locale": "C.UTF-8",
			"users": [{"name": "lab", "gecos": "forgelab", "shell": "/bin/bash", "sudo": "ALL=(ALL) NOPASSWD:ALL",
				"groups": "adm, sudo", "lock_passwd": false, "passwd": "$6$forgelabtest$9ww1GIA7nUgxiKL7CHvtempJaoyHO5X9qT6MfKQRc5WGXr2kfZyvsI0wtIbmTDbUgehxYpTs7.sC5g2a7H7A70",
				"ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZvcmdlbGFiLWxhYi1rZXktZm9yLXRlc3RzLW9ubHk forgelab-lab-ab12"]}],
			"disable_root": true, "ssh_pwauth": false, "ssh_deletekeys": true,
			"ssh_keys": {"ed25519_private": ` + mustJSON(testHostKeyPrivate) + `, "ed25519_public": ` + mustJSON(testHostKeyPublic) + `},
			"write_files": [{"path": "/etc/hosts", "append": true, "content": "10.10.1.1\ta a.handover.lab\n10.10.1.2\tb b.handover.lab\n"}],
			"ssh_publish_hostkeys": {"enabled": false}}`},
		{"network-config", nc, `{"version": 2, "ethernets": {
			"mgmt": {"match": {"macaddress": "52:54:00:ab:12:01"}, "set-name": "mgmt", "dhcp4": true, "link-local": []},
			"eth1": {"match": {"macaddress": "52:54:00:ab:12:02"}, "set-name": "eth1", "dhcp4": false, "dhcp6": false,
				"addresses": ["10.10.1.1/24", "fd00:10:1::1/64"], "optional": true},
			"eth2": {"match": {"macaddress": "52:54:00:ab:12:03"}, "set-name": "eth2", "dhcp4": false, "dhcp6": false,
				"addresses": ["10.10.2.1/24", "fd00:10:2::1/64"], "routes": [{"to": "0.0.0.0/0", "via": "10.10.2.254"}],
				"nameservers": {"addresses": ["10.10.2.254", "fd00:10:2::fe"]}, "optional": true}}}`},
	}
	for _, c := range checks {
		if got, w := parse(c.doc), want(c.want); !reflect.DeepEqual(got, w) {
			gj, _ := json.MarshalIndent(got, "", " ")
			wj, _ := json.MarshalIndent(w, "", " ")
			t.Errorf("%s parses to\n%s\nwant\n%s", c.name, gj, wj)
		}
	}
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestSeedValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Seed)
		want string
	}{
		{"no instance id", func(s *Seed) { s.InstanceID = "" }, "instance id"},
		{"bad hostname", func(s *Seed) { s.Hostname = "a_b" }, "hostname"},
		{"root user", func(s *Seed) { s.User = "root" }, "user"},
		{"bad user", func(s *Seed) { s.User = "Lab User" }, "user"},
		{"multi-line key", func(s *Seed) { s.AuthorizedKeys = []string{"ssh-ed25519 AAAA a\nssh-rsa B"} }, "authorized key"},
		{"half host key", func(s *Seed) { s.HostKeyPublic = "" }, "host key"},
		{"host key not PEM", func(s *Seed) { s.HostKeyPrivate = "x" }, "OpenSSH PEM"},
		{"bad MAC", func(s *Seed) { s.NICs[1].MAC = "52:54:00:zz:00:01" }, "MAC"},
		{"duplicate MAC", func(s *Seed) { s.NICs[2].MAC = "52:54:00:ab:12:02" }, "duplicate MAC"},
		{"duplicate name", func(s *Seed) { s.NICs[2].Name = "eth1" }, "duplicate name"},
		{"long NIC name", func(s *Seed) { s.NICs[1].Name = "averyveryverylongname" }, "1-15"},
		{"bad CIDR", func(s *Seed) { s.NICs[1].Addresses = []string{"10.0.0.1"} }, "CIDR"},
		{"v6 gateway4", func(s *Seed) { s.NICs[2].Gateway4 = "fd00::1" }, "gateway4"},
		{"bad nameserver", func(s *Seed) { s.NICs[2].Nameservers = []string{"dns"} }, "nameserver"},
		{"plain password", func(s *Seed) { s.PasswordHash = "secret" }, "password hash"},
		{"binary etc hosts", func(s *Seed) { s.EtcHosts = "10.0.0.1 a\x00" }, "etc hosts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSeed()
			tc.edit(&s)
			for _, fn := range []func() ([]byte, error){s.MetaData, s.UserData, s.NetworkConfig} {
				if _, err := fn(); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %v, want one mentioning %q", err, tc.want)
				}
			}
			if err := WriteSeedISO(filepath.Join(t.TempDir(), "seed.iso"), s); err == nil {
				t.Errorf("WriteSeedISO accepted an invalid seed")
			}
		})
	}
}

func TestSeedWithoutOptionalParts(t *testing.T) {
	s := Seed{InstanceID: "i-1", Hostname: "b", User: "lab",
		NICs: []SeedNIC{{Name: "eth0", MAC: "52:54:00:00:00:01", DHCP4: true, Addresses: []string{"fd00::5/64"}}}}
	ud, err := s.UserData()
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"ssh_keys", " passwd:", "ssh_authorized_keys"} {
		if bytes.Contains(ud, []byte(absent)) {
			t.Errorf("user-data has %s:\n%s", absent, ud)
		}
	}
	nc, err := s.NetworkConfig()
	if err != nil {
		t.Fatal(err)
	}
	// DHCP with a static IPv6 address keeps its IPv6 link-local address.
	if bytes.Contains(nc, []byte("link-local")) || bytes.Contains(nc, []byte("optional")) {
		t.Errorf("network-config:\n%s", nc)
	}
}

func TestWriteSeedISO(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed.iso")
	s := testSeed()
	if err := WriteSeedISO(path, s); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := iso9660.OpenImage(f)
	if err != nil {
		t.Fatal(err)
	}
	label, err := img.Label()
	if err != nil || label != "cidata" {
		t.Errorf("volume id %q (%v), want cidata", label, err)
	}
	root, err := img.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	kids, err := root.GetChildren()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]func() ([]byte, error){"meta-data": s.MetaData, "user-data": s.UserData, "network-config": s.NetworkConfig}
	found := map[string]bool{}
	for _, k := range kids {
		gen, ok := want[k.Name()]
		if !ok {
			t.Errorf("unexpected file %q on the seed", k.Name())
			continue
		}
		found[k.Name()] = true
		got, err := io.ReadAll(k.Reader())
		if err != nil {
			t.Fatal(err)
		}
		w, _ := gen()
		if !bytes.Equal(got, w) {
			t.Errorf("%s on the ISO differs from the document:\n%s", k.Name(), got)
		}
	}
	if len(found) != 3 {
		t.Errorf("found %v on the seed, want meta-data, user-data, network-config", found)
	}
	// Atomic: no temporary files left next to it, and a rewrite replaces it.
	if err := WriteSeedISO(path, s); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files next to the seed: %v", ents)
	}
}

// Values that YAML 1.1 (PyYAML, so cloud-init) would read as something
// other than a string must come back as the same string: sexagesimal
// numbers (a MAC of digits only), booleans, octal and hex, floats, null.
func TestSeedValuesStayStringsForYAML11(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import yaml").Run() != nil {
		msg := "python3 with PyYAML is not installed: apt-get install python3-yaml"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	tricky := []string{"52:54:00:12:34:56", "1:20", "yes", "No", "on", "off", "y", "null", "~", "010", "0x10", "1e3", "1_000", ".5", "-rf", "a: b", "# x", `q"uote\`, "tab\tx", "ünïcode", ""}
	doc := struct {
		Q []quoted `yaml:"q"`
		P []string `yaml:"p"`
	}{quotedAll(tricky), tricky}
	// quotedAll trims spaces, as for keys; none of these has any.
	out, err := yamlDoc("", doc)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))")
	cmd.Stdin = bytes.NewReader(out)
	js, err := cmd.Output()
	if err != nil {
		t.Fatalf("PyYAML rejects:\n%s\n%v", out, err)
	}
	var got map[string][]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	for i, s := range tricky {
		if got["q"][i] != s {
			t.Errorf("quoted %q reads back as %#v:\n%s", s, got["q"][i], out)
		}
		// Plain strings are only used for values that cannot be numbers
		// with ':' (hostnames, user and interface names); yaml/v3 quotes
		// everything else that is not a string to YAML 1.1.
		if got["p"][i] != s && !strings.Contains(s, ":") {
			t.Errorf("string %q reads back as %#v:\n%s", s, got["p"][i], out)
		}
	}
}

package guestinit

import (
	"bytes"
	"syscall"

	"flag"
	"github.com/GehirnInc/crypt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgelab/forgelab/images"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// testHash is the hash of testPassword (salt "forgelabtest").
const (
	testPassword = `pa"ss: #word`
	testHash     = "$6$forgelabtest$9ww1GIA7nUgxiKL7CHvtempJaoyHO5X9qT6MfKQRc5WGXr2kfZyvsI0wtIbmTDbUgehxYpTs7.sC5g2a7H7A70"
)

// The seed of images' own golden tests (three NICs, a password, a host key).
func testSeed() images.Seed {
	return images.Seed{
		InstanceID:     "fl-ab12-a-0001",
		Hostname:       "a",
		User:           "lab",
		PasswordHash:   testHash,
		AuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZvcmdlbGFiLWxhYi1rZXktZm9yLXRlc3RzLW9ubHk forgelab-lab-ab12"},
		HostKeyPrivate: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n",
		HostKeyPublic:  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEVvcmdlbGFiLXRlc3QtaG9zdC1rZXktbm90LXJlYWw forgelab-host-a",
		EtcHosts:       "10.10.1.1\ta a.handover.lab\n10.10.1.2\tb b.handover.lab\n",
		NICs: []images.SeedNIC{
			{Name: "mgmt", MAC: "52:54:00:AB:12:01", DHCP4: true},
			{Name: "eth1", MAC: "52:54:00:ab:12:02", Addresses: []string{"10.10.1.1/24", "fd00:10:1::1/64"}},
			{Name: "eth2", MAC: "52:54:00:ab:12:03", Addresses: []string{"10.10.2.1/24", "fd00:10:2::1/64"},
				Gateway4: "10.10.2.254", Nameservers: []string{"10.10.2.254", "fd00:10:2::fe"}},
		},
	}
}

func docs(t *testing.T, s images.Seed) (md, ud, nc []byte) {
	t.Helper()
	var err error
	if md, err = s.MetaData(); err != nil {
		t.Fatal(err)
	}
	if ud, err = s.UserData(); err != nil {
		t.Fatal(err)
	}
	if nc, err = s.NetworkConfig(); err != nil {
		t.Fatal(err)
	}
	return md, ud, nc
}

// What forgelab writes is read back as forgelab meant it.
func TestParseForgelabSeed(t *testing.T) {
	in := testSeed()
	s, err := Parse(docs(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Ignored) != 0 {
		t.Errorf("keys forgelab writes but guestinit ignores: %v", s.Ignored)
	}
	if s.InstanceID != in.InstanceID || s.Hostname != "a" || s.ManageEtcHosts != "localhost" {
		t.Errorf("identity: %+v", s)
	}
	if len(s.Users) != 1 {
		t.Fatalf("users: %+v", s.Users)
	}
	u := s.Users[0]
	if u.Name != "lab" || u.HashedPasswd != testHash || u.LockPasswd || u.Shell != "/bin/bash" ||
		strings.Join(u.Groups, ",") != "adm,sudo" || strings.Join(u.Sudo, "|") != "ALL=(ALL) NOPASSWD:ALL" ||
		len(u.SSHAuthorizedKeys) != 1 || u.SSHAuthorizedKeys[0] != in.AuthorizedKeys[0] {
		t.Errorf("user: %+v", u)
	}
	hk := s.HostKeys["ed25519"]
	if hk.Private != in.HostKeyPrivate || hk.Public != in.HostKeyPublic || !s.DeleteHostKeys {
		t.Errorf("host key: %+v", s.HostKeys)
	}
	if len(s.Files) != 1 || s.Files[0].Path != "/etc/hosts" || !s.Files[0].Append || s.Files[0].Content != in.EtcHosts {
		t.Errorf("files: %+v", s.Files)
	}
	if len(s.Network.Ethernets) != 3 {
		t.Fatalf("ethernets: %+v", s.Network.Ethernets)
	}
}

func TestNetworkFilesGolden(t *testing.T) {
	s, err := Parse(docs(t, testSeed()))
	if err != nil {
		t.Fatal(err)
	}
	files := NetworkFiles(s.Network)
	var b strings.Builder
	for _, name := range sortedKeys(files) {
		b.WriteString("=== " + name + "\n" + files[name])
	}
	golden(t, "networkd", []byte(b.String()))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update creates it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// fakeSystem records the programs Apply runs.
type fakeSystem struct {
	cmds     []string
	hostname string
}

func (f *fakeSystem) Run(stdin, name string, args ...string) error {
	f.cmds = append(f.cmds, name+" "+strings.Join(args, " "))
	return nil
}

func (f *fakeSystem) SetHostname(n string) error { f.hostname = n; return nil }

func testRoot(t *testing.T) string {
	root := t.TempDir()
	for p, c := range map[string]string{
		"etc/passwd":               "root:x:0:0:root:/root:/bin/bash\nold:x:1000:1000::/home/old:/bin/sh\n",
		"etc/group":                "root:x:0:\nadm:x:4:syslog\nsudo:x:27:\nold:x:1000:\n",
		"etc/shadow":               "root:*:20000:0:99999:7:::\nold:!:20000:0:99999:7:::\n",
		"etc/gshadow":              "root:*::\nadm:*::syslog\nsudo:*::\nold:!::\n",
		"etc/skel/.profile":        "# profile\n",
		"etc/hosts":                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n",
		"etc/ssh/ssh_host_rsa_key": "old",
		"etc/systemd/network/10-guestinit-09-old.network": "stale",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestApply(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root: run as root (CI does)")
	}
	root := testRoot(t)
	s, err := Parse(docs(t, testSeed()))
	if err != nil {
		t.Fatal(err)
	}
	sys := &fakeSystem{}
	var log bytes.Buffer
	if err := Apply(root, s, sys, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	check := func(p, want string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Error(err)
			return
		}
		if string(b) != want {
			t.Errorf("%s = %q, want %q", p, b, want)
		}
		if fi, _ := os.Stat(filepath.Join(root, p)); fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
	check("etc/hostname", "a\n", 0o644)
	check("etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\ta\n::1\tlocalhost ip6-localhost\n"+
		"10.10.1.1\ta a.handover.lab\n10.10.1.2\tb b.handover.lab\n", 0o644)
	check("etc/ssh/ssh_host_ed25519_key", testSeed().HostKeyPrivate, 0o600)
	check("etc/ssh/ssh_host_ed25519_key.pub", testSeed().HostKeyPublic+"\n", 0o644)
	check("etc/sudoers.d/90-cloud-init-users", "# forgelab-guestinit: users' sudo rules from the seed\nlab ALL=(ALL) NOPASSWD:ALL\n", 0o440)
	check("home/lab/.ssh/authorized_keys", testSeed().AuthorizedKeys[0]+"\n", 0o600)
	check(stateFile, "fl-ab12-a-0001\n", 0o644)
	if _, err := os.Stat(filepath.Join(root, "etc/ssh/ssh_host_rsa_key")); err == nil {
		t.Error("ssh_deletekeys: the image's old rsa key is still there")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd/network/10-guestinit-09-old.network")); err == nil {
		t.Error("a stale network file of an earlier boot is still there")
	}
	if sys.hostname != "a" {
		t.Errorf("kernel hostname %q", sys.hostname)
	}
	if len(sys.cmds) != 0 {
		t.Errorf("ran %v; users are written without useradd", sys.cmds)
	}
	check("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nold:x:1000:1000::/home/old:/bin/sh\nlab:x:1001:1001:forgelab:/home/lab:/bin/bash\n", 0o644)
	check("etc/group", "root:x:0:\nadm:x:4:syslog,lab\nsudo:x:27:lab\nold:x:1000:\nlab:x:1001:\n", 0o644)
	check("etc/gshadow", "root:*::\nadm:*::syslog,lab\nsudo:*::lab\nold:!::\nlab:!::\n", 0o644)
	check("home/lab/.profile", "# profile\n", 0o644)
	shadow, _ := os.ReadFile(filepath.Join(root, "etc/shadow"))
	lines := strings.Split(strings.TrimSpace(string(shadow)), "\n")
	if len(lines) != 3 || lines[1] != "old:!:20000:0:99999:7:::" {
		t.Fatalf("shadow:\n%s", shadow)
	}
	f := strings.Split(lines[2], ":")
	if f[0] != "lab" || f[1] != testHash || f[3] != "0" || f[4] != "99999" {
		t.Errorf("shadow line %q", lines[2])
	} else if err := crypt.SHA512.New().Verify(f[1], []byte(testPassword)); err != nil {
		t.Errorf("the shadow hash does not verify the seed's password: %v", err)
	}
	for _, p := range []string{"home/lab", "home/lab/.ssh", "home/lab/.ssh/authorized_keys", "home/lab/.profile"} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Error(err)
			continue
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1001 || st.Gid != 1001 {
			t.Errorf("%s owned by %d:%d, want 1001:1001", p, st.Uid, st.Gid)
		}
	}
	if strings.Contains(log.String(), testHash) {
		t.Error("the password hash is in the log")
	}

	// The next boot of the same instance: network and hostname again,
	// users and appended files not (the hosts lines stay single).
	sys.cmds = nil
	if err := Apply(root, s, sys, &log); err != nil {
		t.Fatal(err)
	}
	if len(sys.cmds) != 0 {
		t.Errorf("second boot ran %v", sys.cmds)
	}
	check("etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\ta\n::1\tlocalhost ip6-localhost\n"+
		"10.10.1.1\ta a.handover.lab\n10.10.1.2\tb b.handover.lab\n", 0o644)
}

func TestFindSeedISO(t *testing.T) {
	dir := t.TempDir()
	sys, dev := filepath.Join(dir, "sys"), filepath.Join(dir, "dev")
	for _, d := range []string{"vda", "vda1", "vdb"} {
		if err := os.MkdirAll(filepath.Join(sys, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(sys, "vda1", "partition"), []byte("1\n"), 0o644)
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(dev, "vda"), bytes.Repeat([]byte{0}, 64<<10), 0o644)
	if err := images.WriteSeedISO(filepath.Join(dev, "vdb"), testSeed()); err != nil {
		t.Fatal(err)
	}
	got, err := FindSeed(sys, dev)
	if err != nil {
		t.Fatal(err)
	}
	md, ud, nc := docs(t, testSeed())
	if got.From != filepath.Join(dev, "vdb") || !bytes.Equal(got.MetaData, md) || !bytes.Equal(got.UserData, ud) || !bytes.Equal(got.NetworkConfig, nc) {
		t.Errorf("read %s: %q %q %q", got.From, got.MetaData, got.UserData, got.NetworkConfig)
	}
	os.Remove(filepath.Join(dev, "vdb"))
	if _, err := FindSeed(sys, dev); err == nil || !strings.Contains(err.Error(), "no NoCloud seed") {
		t.Errorf("no seed: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	md := []byte("instance-id: i-1\nlocal-hostname: x\n")
	for _, tc := range []struct {
		name, ud, nc, want string
	}{
		{"script user-data", "#!/bin/sh\necho hi\n", "", "not a #cloud-config"},
		{"bad permissions", "#cloud-config\nwrite_files:\n  - path: /x\n    permissions: rw\n", "", "permissions"},
		{"relative path", "#cloud-config\nwrite_files:\n  - path: x/../y\n", "", "absolute path"},
		{"half a host key", "#cloud-config\nssh_keys:\n  ed25519_private: abc\n", "", "give both"},
		{"bonds", "", "version: 2\nbonds:\n  bond0: {}\n", "only ethernets"},
		{"v1", "", "version: 1\nconfig: []\n", "version 2 only"},
		{"bad address", "", "version: 2\nethernets:\n  e:\n    addresses: [10.0.0.1]\n", "want CIDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(md, []byte(tc.ud), []byte(tc.nc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	s, err := Parse(md, []byte("#cloud-config\nruncmd: [ls]\npackages: [x]\n"), nil)
	if err != nil || strings.Join(s.Ignored, ",") != "packages,runcmd" {
		t.Errorf("ignored keys: %v %v", s.Ignored, err)
	}
}

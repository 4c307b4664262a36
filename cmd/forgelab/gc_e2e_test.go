package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// virshDefine defines (does not start) a libvirt object from XML.
func virshDefine(t *testing.T, kind, xml string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), kind+".xml")
	if err := os.WriteFile(p, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := map[string]string{"domain": "define", "network": "net-define"}[kind]
	if out, err := exec.Command("virsh", "-c", "qemu:///system", cmd, p).CombinedOutput(); err != nil {
		t.Fatalf("virsh %s: %v\n%s", cmd, err, out)
	}
}

func ipLink(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Objects with forgelab's prefix that no lab accounts for, made here by
// hand (nothing boots): create of a lab whose names they hold refuses and
// leaves them; gc lists them and gc --yes removes them, but only for the
// id it is given; destroy of a lab whose state.json is damaged removes
// what its id left. Every object has an id no other lab on this machine
// uses (its lab names are this test's own), and gc always runs with --id:
// labs of other state dirs may run on this machine meanwhile.
func TestNameClashAndGC(t *testing.T) {
	requireVMs(t)
	const lab, bystander = "gc-orphan-probe", "gc-bystander-probe"
	id, other := labID(lab), labID(bystander)
	dom, net := "fl-"+id+"-a", "fl-"+id+"-mgmt"
	tap, br, otherTap := "fl"+id+"h00n01", "fl"+id+"l00", "fl"+other+"h00n01"
	for _, n := range []string{lab, bystander} {
		if left := leftovers(t, n); len(left) > 0 {
			t.Fatalf("objects of lab %s exist before the test: %v", n, left)
		}
	}
	t.Cleanup(func() {
		exec.Command("virsh", "-c", "qemu:///system", "undefine", dom).Run()
		exec.Command("virsh", "-c", "qemu:///system", "net-undefine", net).Run()
		for _, d := range []string{tap, br, otherTap} {
			exec.Command("ip", "link", "del", d).Run()
		}
		os.RemoveAll(filepath.Join(stateDir(), "labs", lab))
	})

	// A network of that name made by someone else: create refuses, names
	// it, and leaves it.
	virshDefine(t, "network", "<network><name>"+net+"</name></network>")
	file := writeLab(t, "[lab]\nname = \""+lab+"\"\n[defaults]\nmemory = \"256MiB\"\n[[host]]\nname = \"a\"\n")
	r := forgelab(t, "create", file)
	if r.code == 0 {
		t.Fatal("create went ahead although its management network's name was taken")
	}
	for _, want := range []string{"libvirt network " + net, "nothing was made", "gc --id " + id} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("create's error lacks %q:\n%s", want, r.stderr)
		}
	}
	if err := exec.Command("virsh", "-c", "qemu:///system", "net-info", net).Run(); err != nil {
		t.Fatalf("create removed network %s, which it did not make", net)
	}

	// More orphans of that id (a domain defined, not started; a tap; a
	// bridge) and one of another id.
	virshDefine(t, "domain", "<domain type='qemu'><name>"+dom+"</name><memory unit='MiB'>32</memory><os><type arch='x86_64'>hvm</type></os></domain>")
	ipLink(t, "tuntap", "add", tap, "mode", "tap")
	ipLink(t, "link", "add", br, "type", "bridge")
	ipLink(t, "tuntap", "add", otherTap, "mode", "tap")

	out := mustForgelab(t, "gc", "--id", id)
	for _, want := range []string{"domain   " + dom, "network  " + net, "netdev   " + tap, "netdev   " + br} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("gc did not list %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, otherTap) {
		t.Errorf("gc --id %s listed %s of another id:\n%s", id, otherTap, out)
	}
	if len(leftovers(t, lab)) != 4 {
		t.Fatalf("gc without --yes removed something: %v left", leftovers(t, lab))
	}
	mustForgelab(t, "gc", "--id", id, "--yes")
	assertNothingLeft(t, lab)
	if len(leftovers(t, bystander)) != 1 {
		t.Errorf("gc --id %s removed an object of id %s", id, other)
	}

	// A lab whose state.json is damaged: destroy sweeps its id.
	ipLink(t, "tuntap", "add", tap, "mode", "tap")
	dir := filepath.Join(stateDir(), "labs", lab)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"lab": "`+lab+`", "resour`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustForgelab(t, "destroy", lab)
	assertNothingLeft(t, lab)
	if len(leftovers(t, bystander)) != 1 {
		t.Errorf("destroy of %s removed an object of id %s", lab, other)
	}
}

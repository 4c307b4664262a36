package hypervisor

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file; got:\n%s", name, got)
	}
}

func TestDomainXMLGolden(t *testing.T) {
	base := DomainConfig{
		Name: "fl-1a2b-a", Title: "forgelab quickstart/a", Lab: "quickstart", LabID: "1a2b", VCPUs: 1, MemoryMiB: 512,
		Disk: "/var/lib/forgelab/labs/quickstart/a.qcow2", Seed: "/var/lib/forgelab/labs/quickstart/a-seed.iso",
		SerialLog: "/var/lib/forgelab/labs/quickstart/a-serial.log",
		NICs: []NIC{
			{MAC: "52:54:00:00:00:01", Network: "fl-1a2b-mgmt", Tap: "fl1a2bh00m"},
			{MAC: "52:54:00:00:00:02", Bridge: "fl1a2bl00", Tap: "fl1a2bh00n00"},
			{MAC: "52:54:00:00:00:03", Tap: "fl1a2bh00n01", TapExisting: true},
			{MAC: "52:54:00:00:00:04", UDP: &UDPEndpoint{LocalAddr: "127.0.0.1", LocalPort: 40001, RemoteAddr: "127.0.0.1", RemotePort: 40002}},
		},
	}
	tcg := base
	tcg.Accel, tcg.TBCacheMiB = TCG, 128
	// direct kernel boot, as for forgelab's own images
	tcg.Kernel, tcg.Initrd = "/var/lib/forgelab/images/debian-12.vmlinuz", "/var/lib/forgelab/images/debian-12.initrd"
	tcg.Cmdline = "root=UUID=0e1f rw console=ttyS0,115200 quiet"
	kvm := base
	kvm.Accel = KVM
	for name, cfg := range map[string]DomainConfig{"domain-tcg.xml": tcg, "domain-kvm.xml": kvm} {
		got, err := DomainXML(cfg)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, got+"\n")
		if lab, id, ok := LabOf(got); !ok || lab != "quickstart" || id != "1a2b" {
			t.Errorf("LabOf(%s) = %q %q %v", name, lab, id, ok)
		}
	}
	if _, _, ok := LabOf("<domain><name>other</name></domain>"); ok {
		t.Error("LabOf found a lab in a domain without metadata")
	}
}

func TestDomainXMLRejectsKernelWithoutInitrd(t *testing.T) {
	_, err := DomainXML(DomainConfig{Name: "x", Disk: "/d", Kernel: "/k"})
	if err == nil || !strings.Contains(err.Error(), "both a kernel and an initrd") {
		t.Fatalf("kernel without initrd: %v", err)
	}
}

func TestDomainXMLRejectsNICWithoutBackend(t *testing.T) {
	_, err := DomainXML(DomainConfig{Name: "x", Disk: "/d", NICs: []NIC{{MAC: "52:54:00:00:00:09"}}})
	if err == nil {
		t.Fatal("a NIC with no backend was accepted")
	}
}

func TestNetworkXMLGolden(t *testing.T) {
	got, err := NetworkXML(NATNetwork{
		Name: "fl-1a2b-mgmt", Bridge: "fl1a2b-m", Gateway: "10.213.7.1", Netmask: "255.255.255.0",
		Domain: "quickstart.lab",
		Hosts:  []DHCPHost{{MAC: "52:54:00:00:00:01", IP: "10.213.7.10", Name: "a"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "network.xml", got+"\n")
}

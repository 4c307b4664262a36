package netfabric

import (
	"os"
	"testing"
)

func TestEnsureTap(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: makes devices (needs root)")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root")
		}
		t.Skip("skipped: needs root (run the tests as root to enable)")
	}
	const name = "fltntap0"
	_ = DeleteLink(name)
	t.Cleanup(func() { _ = DeleteLink(name) })
	for i := 0; i < 2; i++ { // idempotent
		if err := EnsureTap(name); err != nil {
			t.Fatal(err)
		}
	}
	if !LinkExists(name) {
		t.Fatal("tap not there")
	}
	b, _ := os.ReadFile("/sys/class/net/" + name + "/tun_flags")
	// IFF_TAP 0x2, IFF_PERSIST 0x800, IFF_NO_PI 0x1000, IFF_ONE_QUEUE 0x2000, IFF_VNET_HDR 0x4000
	if string(b) != "0x7802\n" {
		t.Fatalf("tun_flags = %q, want 0x7802", b)
	}
	const br = "fltntapbr"
	if err := EnsureBridge(br); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteLink(br) })
	for i := 0; i < 2; i++ {
		if err := AddPort(br, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat("/sys/class/net/" + br + "/brif/" + name); err != nil {
		t.Fatalf("%s is not a port of %s: %v", name, br, err)
	}
	if err := DeleteLink(name); err != nil || LinkExists(name) {
		t.Fatalf("delete: %v", err)
	}
}

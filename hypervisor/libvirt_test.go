package hypervisor

import (
	"strings"
	"testing"
)

// A libvirtd that is not there must get an error that says how to start it.
func TestConnectWithoutDaemonSaysHowToFix(t *testing.T) {
	_, err := Connect("qemu+unix:///system?socket=/nonexistent/libvirt-sock")
	if err == nil {
		t.Fatal("connected to a socket that does not exist")
	}
	if !strings.Contains(err.Error(), "libvirtd -d") && !strings.Contains(err.Error(), "apt-get install") {
		t.Errorf("error does not say how to fix it: %v", err)
	}
}

func TestCheckQEMUWithoutQEMUSaysHowToFix(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := CheckQEMU()
	if err == nil || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Errorf("CheckQEMU without QEMU: %v", err)
	}
}

package hypervisor

import (
	"errors"
	"strings"
	"testing"

	"libvirt.org/go/libvirt"
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

// A define that meets a name in use (libvirt 9: OPERATION_FAILED "already
// exists with uuid") is ErrExists, so create drops its record and its undo
// leaves the other object.
func TestExistsError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{libvirt.Error{Code: libvirt.ERR_OPERATION_FAILED, Message: "operation failed: domain 'fl-1a2b-a' already exists with uuid 5a1c"}, true},
		{libvirt.Error{Code: libvirt.ERR_OPERATION_FAILED, Message: "operation failed: network 'fl-1a2b-mgmt' already exists with uuid 5a1c"}, true},
		{libvirt.Error{Code: libvirt.ERR_DOM_EXIST, Message: "domain exists"}, true},
		{libvirt.Error{Code: libvirt.ERR_OPERATION_FAILED, Message: "operation failed: bridge busy"}, false},
		{libvirt.Error{Code: libvirt.ERR_XML_ERROR, Message: "already exists"}, false},
	} {
		if got := errors.Is(existsError("define x", c.err), ErrExists); got != c.want {
			t.Errorf("%v: ErrExists %v, want %v", c.err, got, c.want)
		}
	}
}

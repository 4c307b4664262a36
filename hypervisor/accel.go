// Package hypervisor runs lab VMs through libvirt: domain and network XML,
// start/stop, serial consoles and logs, and the choice of accelerator.
package hypervisor

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Accel is the accelerator a domain runs on.
type Accel string

const (
	KVM Accel = "kvm"
	TCG Accel = "tcg"
)

// ParseAccel reads a user's --accel value; "" and "auto" mean detect.
func ParseAccel(s string) (Accel, bool, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return "", false, nil
	case "kvm":
		return KVM, true, nil
	case "tcg", "qemu":
		return TCG, true, nil
	}
	return "", false, fmt.Errorf("accelerator %q: use kvm, tcg or auto", s)
}

// Probe is what DetectAccel looks at; fields are paths so tests can point
// them at fake files.
type Probe struct {
	CPUInfo string // /proc/cpuinfo
	KVMDev  string // /dev/kvm
	SysMod  string // /sys/module
}

// DefaultProbe looks at the real machine.
func DefaultProbe() Probe {
	return Probe{CPUInfo: "/proc/cpuinfo", KVMDev: "/dev/kvm", SysMod: "/sys/module"}
}

// DetectAccel picks KVM only where it can run a stock guest kernel, and
// says why it chose what it chose. A PVM /dev/kvm (kvm_pvm, as on nested
// cloud machines without VMX) opens fine but dies on the first cmpxchg16b of
// a normal kernel, so it counts as no KVM.
func DetectAccel(p Probe) (Accel, string) {
	f, err := os.OpenFile(p.KVMDev, os.O_RDWR, 0)
	if err != nil {
		return TCG, fmt.Sprintf("%s cannot be opened (%v): guests run under TCG software emulation, several times slower than KVM", p.KVMDev, err)
	}
	f.Close()
	if _, err := os.Stat(p.SysMod + "/kvm_pvm"); err == nil {
		return TCG, fmt.Sprintf("%s is a PVM device (kvm_pvm), which cannot run stock guest kernels: guests run under TCG software emulation", p.KVMDev)
	}
	if !cpuHasVirt(p.CPUInfo) {
		return TCG, "the CPU shows no vmx or svm flag: guests run under TCG software emulation"
	}
	return KVM, "KVM is available (/dev/kvm and hardware virtualisation)"
}

func cpuHasVirt(cpuinfo string) bool {
	f, err := os.Open(cpuinfo)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "flags") {
			continue
		}
		for _, fl := range strings.Fields(line) {
			if fl == "vmx" || fl == "svm" {
				return true
			}
		}
		return false
	}
	return false
}

// ExplainQEMULog turns known fatal lines of a domain's QEMU log into advice.
// It returns "" when it recognises nothing.
func ExplainQEMULog(log string) string {
	switch {
	case strings.Contains(log, "KVM internal error"):
		return "QEMU reported a KVM internal error: this machine's KVM cannot run the guest kernel (common with nested or PVM virtualisation); run with --accel tcg"
	case strings.Contains(log, "Could not access KVM kernel module"), strings.Contains(log, "failed to initialize kvm"):
		return "QEMU could not use KVM: run with --accel tcg, or load the kvm module"
	case strings.Contains(log, "Permission denied") && strings.Contains(log, "qcow2"):
		return "QEMU could not open a disk image: the state directory must be readable by the libvirt-qemu user"
	}
	return ""
}

// CheckKVMDevice warns about a /dev/kvm the libvirt-qemu user cannot open
// (no udev rule applied): libvirt then distrusts its cached QEMU
// capabilities on every call and each domain start costs a fresh probe of
// QEMU, a minute or more on a busy machine. It returns "" when all is well.
func CheckKVMDevice(dev string) string {
	fi, err := os.Stat(dev)
	if err != nil {
		return ""
	}
	if fi.Mode().Perm()&0o060 == 0o060 {
		return ""
	}
	return fmt.Sprintf("%s is %v and not open to the kvm group, so libvirt re-probes QEMU on every call (slow domain starts): give it Debian's usual permissions with `chgrp kvm %s && chmod 0660 %s` (make setup does this)", dev, fi.Mode().Perm(), dev, dev)
}

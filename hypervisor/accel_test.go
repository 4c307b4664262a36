package hypervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetectAccel(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kvm := write("kvm", "")
	vmx := write("cpuinfo-vmx", "processor : 0\nflags : fpu vme vmx sse\n")
	novmx := write("cpuinfo-plain", "processor : 0\nflags : fpu vme sse\n")
	noMods := filepath.Join(dir, "mods-none")
	os.Mkdir(noMods, 0o755)
	pvmMods := filepath.Join(dir, "mods-pvm")
	os.MkdirAll(filepath.Join(pvmMods, "kvm_pvm"), 0o755)

	tests := []struct {
		name   string
		probe  Probe
		want   Accel
		reason string
	}{
		{"kvm works", Probe{vmx, kvm, noMods}, KVM, "KVM is available"},
		{"no device", Probe{vmx, filepath.Join(dir, "missing"), noMods}, TCG, "cannot be opened"},
		{"pvm device", Probe{vmx, kvm, pvmMods}, TCG, "PVM"},
		{"no vmx flag", Probe{novmx, kvm, noMods}, TCG, "no vmx or svm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := DetectAccel(tt.probe)
			if got != tt.want || !strings.Contains(why, tt.reason) {
				t.Errorf("DetectAccel = %s, %q; want %s with %q", got, why, tt.want, tt.reason)
			}
		})
	}
}

func TestParseAccel(t *testing.T) {
	for in, want := range map[string]Accel{"": "", "auto": "", "kvm": KVM, "TCG": TCG, "qemu": TCG} {
		got, _, err := ParseAccel(in)
		if err != nil || got != want {
			t.Errorf("ParseAccel(%q) = %q, %v", in, got, err)
		}
	}
	if _, _, err := ParseAccel("xen"); err == nil {
		t.Error("ParseAccel(xen) accepted")
	}
}

func TestExplainQEMULog(t *testing.T) {
	if !strings.Contains(ExplainQEMULog("KVM internal error. Suberror: 1\n"), "--accel tcg") {
		t.Error("KVM internal error not explained")
	}
	if ExplainQEMULog("all fine") != "" {
		t.Error("explained a normal log")
	}
}

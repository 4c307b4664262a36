package hypervisor

import "testing"

func TestDACGroup(t *testing.T) {
	const debian = `<capabilities><host><uuid>x</uuid>
  <secmodel><model>none</model><doi>0</doi></secmodel>
  <secmodel><model>dac</model><doi>0</doi>
    <baselabel type='kvm'>+64055:+64055</baselabel>
    <baselabel type='qemu'>+64055:+64055</baselabel>
  </secmodel></host></capabilities>`
	cases := []struct {
		name, xml string
		gid       int
		ok, err   bool
	}{
		{"debian system daemon", debian, 64055, true, false},
		{"no dac model", `<capabilities><host><secmodel><model>none</model></secmodel></host></capabilities>`, 0, false, false},
		{"bad label", `<capabilities><host><secmodel><model>dac</model><baselabel type='qemu'>qemu</baselabel></secmodel></host></capabilities>`, 0, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gid, ok, err := dacGroup(tc.xml)
			if gid != tc.gid || ok != tc.ok || (err != nil) != tc.err {
				t.Errorf("got %d %v %v", gid, ok, err)
			}
		})
	}
}

package quiet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func stat(pid, ppid int, comm string, ticks int) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 0 0 0 0 0 %d 0 0 0 20 0 1 0 100 1000 50 0", pid, comm, ppid, pid, pid, ticks)
}

// fakeGuest answers the /proc command with its snapshots in turn, and
// the timer command with timers.
type fakeGuest struct {
	mu     sync.Mutex
	snaps  []string
	timers string
}

func (g *fakeGuest) run(ctx context.Context, cmd string) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if strings.HasPrefix(cmd, "systemctl") {
		return []byte(g.timers), nil
	}
	s := g.snaps[0]
	if len(g.snaps) > 1 {
		g.snaps = g.snaps[1:]
	}
	return []byte(s), nil
}

func guestSnap(lines ...string) string {
	return "#self 900\n#conf\n4096\n100\n#stat\n" + strings.Join(lines, "\n") + "\n#env\n300/environ:FORGELAB_WORKLOAD=leaky\n#cgroup\n400/cgroup:forgelab-babeld.service\n"
}

func TestCheck(t *testing.T) {
	quietGuest := func() *fakeGuest {
		s := guestSnap(stat(1, 0, "systemd", 100), stat(300, 1, "leaky", 10), stat(400, 1, "babeld", 10), stat(899, 1, "sshd", 5), stat(900, 899, "sh", 1))
		return &fakeGuest{snaps: []string{s, s}}
	}
	tests := []struct {
		name     string
		load     string
		gov      string
		domains  []string
		labs     []string
		busyHost bool
		guest    *fakeGuest
		want     []string // findings' texts contain these, in order; none: quiet
	}{
		{name: "quiet", load: "0.10 0.20 0.30 1/100 999", guest: quietGuest()},
		{name: "busy neighbours", load: "9.50 3 3 1/100 999", gov: "powersave", domains: []string{"fl-ab12-a", "other-vm"},
			labs: []string{"handover"}, busyHost: true, guest: quietGuest(),
			want: []string{"load average 9.50", "other libvirt domains running: other-vm", "other forgelab labs up: handover", "governor powersave on 2 CPUs", "process 77 (stress)"}},
		{name: "noisy guest", load: "0.1 0 0 1/1 1", guest: &fakeGuest{
			snaps: []string{
				guestSnap(stat(1, 0, "systemd", 100), stat(300, 1, "leaky", 10), stat(500, 1, "apt-get", 0), stat(899, 1, "sshd", 5), stat(900, 899, "sh", 1)),
				// the lab's workload and the sampler's own ssh session use CPU too: not noise
				guestSnap(stat(1, 0, "systemd", 100), stat(300, 1, "leaky", 500), stat(500, 1, "apt-get", 60), stat(899, 1, "sshd", 90), stat(900, 899, "sh", 1)),
			},
			timers: "Wed 2026-12-02 06:00:00 UTC 3h left Tue 2026-12-01 06:00:00 UTC 20h ago apt-daily.timer apt-daily.service\n" +
				"Wed 2026-12-02 00:00:00 UTC 1h left - - fstrim.timer fstrim.service\n"},
			want: []string{"a: process 500 (apt-get)", "a: timer apt-daily.timer", "a: timer fstrim.timer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc, sys := t.TempDir(), t.TempDir()
			writeFile(t, filepath.Join(proc, "loadavg"), tt.load)
			writeFile(t, filepath.Join(proc, "1/stat"), stat(1, 0, "init", 10))
			writeFile(t, filepath.Join(proc, "77/stat"), stat(77, 1, "stress", 0))
			writeFile(t, filepath.Join(proc, "88/stat"), stat(88, 1, "qemu-system-x86", 0))
			if tt.gov != "" {
				for _, c := range []string{"cpu0", "cpu1"} {
					writeFile(t, filepath.Join(sys, "devices/system/cpu", c, "cpufreq/scaling_governor"), tt.gov+"\n")
				}
			}
			go func() {
				time.Sleep(50 * time.Millisecond)
				// The lab's own QEMU is busy in every case; the neighbour only when asked.
				writeFile(t, filepath.Join(proc, "88/stat"), stat(88, 1, "qemu-system-x86", 100))
				if tt.busyHost {
					writeFile(t, filepath.Join(proc, "77/stat"), stat(77, 1, "stress", 100))
				}
			}()
			in := Inputs{Proc: proc, Sys: sys, Window: 300 * time.Millisecond, OwnDomains: []string{"fl-ab12-a"}, OtherLabs: tt.labs,
				OwnPIDs: []int{88}, Guests: []Guest{{Name: "a", Run: tt.guest.run}}}
			if tt.domains != nil {
				in.RunningDomains = func() ([]string, error) { return tt.domains, nil }
			}
			r, err := Check(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.want) == 0 {
				if r.Noisy() {
					t.Errorf("quiet machine reported noisy:\n%s", r)
				}
				if r.Notes()["quiet"] != "yes" {
					t.Errorf("notes %v", r.Notes())
				}
				return
			}
			if len(r.Findings) != len(tt.want) {
				t.Errorf("findings:\n%s\nwant %d: %q", r, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if i < len(r.Findings) && !strings.Contains(r.Findings[i].String(), w) {
					t.Errorf("finding %d = %q, want it to contain %q", i, r.Findings[i], w)
				}
			}
			if n := r.Notes(); n["quiet"] != "no" || !strings.Contains(n["quiet.seen"], tt.want[0]) {
				t.Errorf("notes %v", n)
			}
		})
	}
}

func TestGuestUnreadableIsAFinding(t *testing.T) {
	proc := t.TempDir()
	writeFile(t, filepath.Join(proc, "loadavg"), "0 0 0 1/1 1")
	writeFile(t, filepath.Join(proc, "1/stat"), stat(1, 0, "init", 10))
	g := Guest{Name: "b", Run: func(context.Context, string) ([]byte, error) { return nil, fmt.Errorf("ssh: connection refused") }}
	r, err := Check(context.Background(), Inputs{Proc: proc, Sys: t.TempDir(), Window: 10 * time.Millisecond, Guests: []Guest{g}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || !strings.Contains(r.Findings[0].String(), "b: cannot read its processes: ssh: connection refused") {
		t.Errorf("findings:\n%s", r)
	}
}

// A physical host's lab interfaces: packets beyond what the lab delivered
// are foreign traffic; as many as the lab delivered are not.
func TestPhysicalHostForeignTraffic(t *testing.T) {
	tests := []struct {
		name      string
		rx, sent  [2]uint64 // before and after the window
		wantNoisy bool
	}{
		{"only the lab's packets", [2]uint64{1000, 1400}, [2]uint64{500, 900}, false},
		{"a few more (ARP)", [2]uint64{1000, 1401}, [2]uint64{500, 900}, false},
		{"a LAN broadcasting", [2]uint64{1000, 1500}, [2]uint64{500, 500}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc := t.TempDir()
			writeFile(t, filepath.Join(proc, "loadavg"), "0 0 0 1/1 1")
			writeFile(t, filepath.Join(proc, "1/stat"), stat(1, 0, "init", 10))
			s := guestSnap(stat(1, 0, "systemd", 100))
			fg := &fakeGuest{snaps: []string{s, s}}
			var mu sync.Mutex
			reads, sents := 0, 0
			g := Guest{Name: "p", LabIfaces: []string{"eno2", "vx1"},
				Run: func(ctx context.Context, cmd string) ([]byte, error) {
					if !strings.HasPrefix(cmd, "cat /sys/class/net/") {
						return fg.run(ctx, cmd)
					}
					if !strings.Contains(cmd, "/eno2/") || !strings.Contains(cmd, "/vx1/") {
						t.Errorf("traffic command %q does not read both interfaces", cmd)
					}
					mu.Lock()
					defer mu.Unlock()
					rx := tt.rx[min(reads, 1)]
					reads++
					return fmt.Appendf(nil, "%d\n%d\n", rx-100, 100), nil // split over two interfaces
				},
				LabSent: func(context.Context) (uint64, error) {
					mu.Lock()
					defer mu.Unlock()
					n := tt.sent[min(sents, 1)]
					sents++
					return n, nil
				}}
			r, err := Check(context.Background(), Inputs{Proc: proc, Sys: t.TempDir(), Window: time.Second, Guests: []Guest{g}})
			if err != nil {
				t.Fatal(err)
			}
			var traffic []string
			for _, f := range r.Findings {
				if f.What == "traffic" {
					traffic = append(traffic, f.String())
				}
			}
			if (len(traffic) > 0) != tt.wantNoisy {
				t.Errorf("traffic findings %q, want noisy=%v", traffic, tt.wantNoisy)
			}
			if tt.wantNoisy && !strings.Contains(traffic[0], "eno2, vx1") {
				t.Errorf("finding %q does not name the interfaces", traffic[0])
			}
		})
	}
}

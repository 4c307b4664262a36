package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// demoSecret is a service env value of TestSoftwareLab: it must reach the
// service and nothing any user of the guest can read.
const demoSecret = `s3cret-web "q" $HOME`

// qemuIDs is the user and group QEMU runs as (libvirt's DAC label on
// Debian); ok is false where that user does not exist.
func qemuIDs(t *testing.T) (uid, gid int, ok bool) {
	u, err := user.Lookup("libvirt-qemu")
	if err != nil {
		return 0, 0, false
	}
	uid, _ = strconv.Atoi(u.Uid)
	if g, err := user.LookupGroup("libvirt-qemu"); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	return uid, gid, true
}

func statOf(t *testing.T, p string) (os.FileMode, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t)
}

// secretChecks: on this machine the lab directory is closed to other
// users and its secret files are 0600, with the running VM's disk and
// seed handed to QEMU by libvirt; in guest vm the service's environment
// is in a root-only file and not in its unit; the coordination service
// wants the token and listens on no wildcard address.
func secretChecks(t *testing.T, lab, vm string) {
	dir := filepath.Join(stateDir(), "labs", lab)
	qemuUID, qemuGID, haveQEMU := qemuIDs(t)
	t.Run("lab dir", func(t *testing.T) {
		mode, st := statOf(t, dir)
		want := os.FileMode(0o700)
		if haveQEMU {
			want = 0o710
			if int(st.Gid) != qemuGID {
				t.Errorf("%s: group %d, want libvirt-qemu (%d)", dir, st.Gid, qemuGID)
			}
		}
		if mode != want || st.Uid != 0 {
			t.Errorf("%s: mode %o uid %d, want %o root", dir, mode, st.Uid, want)
		}
	})
	t.Run("secret files 0600", func(t *testing.T) {
		for _, name := range []string{"id_ed25519", "console-password", "state.json", "lab.toml", "coordd.pid",
			vm + "-seed.iso", vm + ".qcow2", "workloads/plan.json", "workloads/workloadd.pid"} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); os.IsNotExist(err) && strings.HasSuffix(name, "workloadd.pid") {
				continue // the runner is done
			}
			mode, st := statOf(t, p)
			if mode != 0o600 {
				t.Errorf("%s: mode %o, want 600", name, mode)
			}
			// libvirt's DAC relabelling gives QEMU the running VM's files.
			if haveQEMU && (name == vm+"-seed.iso" || name == vm+".qcow2") && int(st.Uid) != qemuUID {
				t.Errorf("%s of running VM %s: owner %d, want libvirt-qemu (%d)", name, vm, st.Uid, qemuUID)
			}
		}
	})
	t.Run("service env in a root-only file", func(t *testing.T) {
		out := mustForgelab(t, "exec", lab, vm, "--", `sudo sh -c '
grep -c s3cret /etc/systemd/system/forgelab-web.service
grep -c "^EnvironmentFile=/etc/forgelab/web.env$" /etc/systemd/system/forgelab-web.service
stat -c "%a %U" /etc/forgelab /etc/forgelab/web.env
tr "\0" "\n" </proc/$(systemctl show -p MainPID --value forgelab-web.service)/environ | grep "^DEMO_SECRET="'`)
		want := "0\n1\n700 root\n600 root\nDEMO_SECRET=" + demoSecret + "\n"
		if out != want {
			t.Errorf("on %s:\n%s\nwant\n%s", vm, out, want)
		}
	})
	t.Run("coordination service", func(t *testing.T) {
		var st struct {
			Coord struct {
				URLs map[string]string `json:"urls"`
			} `json:"coord"`
		}
		b, _ := os.ReadFile(filepath.Join(dir, "state.json"))
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		withToken := st.Coord.URLs[vm]
		at := strings.LastIndex(withToken, "@")
		if !strings.HasPrefix(withToken, "http://forgelab:") || at < 0 {
			t.Fatalf("coord URL of %s: %q", vm, withToken)
		}
		bare := "http://" + withToken[at+1:]
		out := mustForgelab(t, "exec", lab, vm, "--", fmt.Sprintf(
			`for u in %s/kv/nope %s/kv/nope %s/healthz; do curl -s -o /dev/null -w "%%{http_code}\n" "$u"; done`,
			bare, withToken, bare))
		if out != "401\n404\n200\n" {
			t.Errorf("without token, with it, healthz: %q, want 401, 404, 200", out)
		}
		pid, err := os.ReadFile(filepath.Join(dir, "coordd.pid"))
		if err != nil {
			t.Fatal(err)
		}
		ss, err := exec.Command("ss", "-Hltnp").Output()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(string(ss), "\n") {
			if !strings.Contains(line, fmt.Sprintf("pid=%s,", strings.Fields(string(pid))[0])) {
				continue
			}
			n++
			local := strings.Fields(line)[3] // State Recv-Q Send-Q Local Peer Process
			if strings.HasPrefix(local, "0.0.0.0:") || strings.HasPrefix(local, "*:") || strings.HasPrefix(local, "[::]:") {
				t.Errorf("coordd listens on %s", local)
			}
		}
		if n == 0 {
			t.Errorf("no listening socket of coordd (pid %s) in:\n%s", pid, ss)
		}
	})
}

// qemuGaveBack: once QEMU ends, libvirt gives the VM's disk back to root
// (remember_owner), still 0600. It does not restore read-only images: the
// seed stays QEMU's user's (measured here, libvirt 9.0), still 0600, so
// no one but root and QEMU reads it, as while the VM ran.
func qemuGaveBack(t *testing.T, lab, vm string) {
	mustForgelab(t, "host", "kill", lab, vm)
	dir := filepath.Join(stateDir(), "labs", lab)
	qemuUID, _, haveQEMU := qemuIDs(t)
	for _, name := range []string{vm + "-seed.iso", vm + ".qcow2"} {
		mode, st := statOf(t, filepath.Join(dir, name))
		ok := st.Uid == 0 || (name == vm+"-seed.iso" && haveQEMU && int(st.Uid) == qemuUID)
		if mode != 0o600 || !ok {
			t.Errorf("%s after the VM ended: mode %o uid %d, want 600 root", name, mode, st.Uid)
		}
	}
}

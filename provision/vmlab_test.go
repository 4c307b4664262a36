package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// sharedVM is one lab VM booted with the forgelab binary for the tests that
// need a real systemd host, shared by all of them (a boot costs tens of
// CPU-seconds under emulation). TestMain destroys it.
var sharedVM vmLab

type vmLab struct {
	once                  sync.Once
	err                   error
	started               bool
	bin, stateDir         string
	spec, key, knownHosts string
}

const vmLabName = "fltest-provision"

func (v *vmLab) start() error {
	v.once.Do(func() { v.err = v.create() })
	return v.err
}

func (v *vmLab) create() error {
	v.bin = os.Getenv("FORGELAB_BIN")
	if v.bin == "" {
		return errors.New("FORGELAB_BIN is not set")
	}
	v.stateDir = os.Getenv("FORGELAB_STATE_DIR")
	if v.stateDir == "" {
		v.stateDir = "/var/lib/forgelab"
	}
	dir, err := os.MkdirTemp("", "fltest-provision-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "lab.toml")
	lab := fmt.Sprintf("[lab]\nname = %q\n[defaults]\nmemory = \"512MiB\"\n[[host]]\nname = \"vm\"\n", vmLabName)
	if err := os.WriteFile(file, []byte(lab), 0o644); err != nil {
		return err
	}
	v.run("destroy", vmLabName) // a leftover of a killed run
	v.started = true
	if out, err := v.run("create", file); err != nil {
		return fmt.Errorf("forgelab create: %v\n%s", err, out)
	}
	out, err := v.run("inspect", "-o", "json", vmLabName)
	if err != nil {
		return fmt.Errorf("forgelab inspect: %v\n%s", err, out)
	}
	var info struct {
		User  string `json:"user"`
		Hosts []struct {
			MgmtIP string `json:"mgmt_ip"`
		}
	}
	if err := json.Unmarshal(out, &info); err != nil || len(info.Hosts) != 1 {
		return fmt.Errorf("forgelab inspect: %v\n%s", err, out)
	}
	user := info.User
	if user == "" {
		user = "lab"
	}
	labDir := filepath.Join(v.stateDir, "labs", vmLabName)
	v.spec = fmt.Sprintf("%s@%s:22", user, info.Hosts[0].MgmtIP)
	v.key = filepath.Join(labDir, "id_ed25519")
	v.knownHosts = filepath.Join(labDir, "known_hosts")
	return nil
}

func (v *vmLab) run(args ...string) ([]byte, error) {
	return exec.Command(v.bin, append([]string{"--state-dir", v.stateDir}, args...)...).CombinedOutput()
}

func (v *vmLab) destroy() error {
	if !v.started {
		return nil
	}
	if out, err := v.run("destroy", vmLabName); err != nil {
		return fmt.Errorf("forgelab destroy %s: %v\n%s", vmLabName, err, out)
	}
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := sharedVM.destroy(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

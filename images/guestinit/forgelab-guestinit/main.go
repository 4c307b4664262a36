// Command forgelab-guestinit applies a cloud-init NoCloud seed at boot,
// before ssh.service, in the images forgelab builds (see package guestinit).
// It is built static (CGO_ENABLED=0) and copied into the image.
//
// Run by the kernel as PID 1, it is instead the whole initramfs of a
// directly booted image (package earlyinit): it mounts the root and starts
// systemd, which then runs it again as a service to apply the seed.
//
//	forgelab-guestinit [-root /] [-seed DIR]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/images/earlyinit"
	"github.com/forgelab/forgelab/images/guestinit"
)

func main() {
	if os.Getpid() == 1 {
		err := earlyinit.Run()
		fmt.Fprintf(os.Stderr, "forgelab-guestinit (initramfs): %v\n", err)
		os.Exit(1)
	}
	root := flag.String("root", "/", "the machine's root directory")
	seedDir := flag.String("seed", "", "read the seed from this directory instead of the cidata disk")
	flag.Parse()

	var files guestinit.SeedFiles
	var err error
	if *seedDir != "" {
		files, err = guestinit.ReadSeedDir(*seedDir)
	} else {
		files, err = guestinit.FindSeed("/sys/class/block", "/dev")
	}
	if err != nil {
		fail(err)
	}
	seed, err := guestinit.Parse(files.MetaData, files.UserData, files.NetworkConfig)
	if err != nil {
		fail(fmt.Errorf("seed from %s: %w", files.From, err))
	}
	fmt.Fprintf(os.Stderr, "forgelab-guestinit: seed from %s, instance %s, host %s\n", files.From, seed.InstanceID, seed.Hostname)
	if err := guestinit.Apply(*root, seed, system{}, prefixWriter{}); err != nil {
		fail(err)
	}
}

type system struct{}

func (system) Run(stdin, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// stdin (passwords) is never part of the message
		return fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (system) SetHostname(name string) error { return unix.Sethostname([]byte(name)) }

type prefixWriter struct{}

func (prefixWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		fmt.Fprintln(os.Stderr, "forgelab-guestinit: "+l)
	}
	return len(p), nil
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "forgelab-guestinit: %v\n", err)
	os.Exit(1)
}

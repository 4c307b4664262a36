package provision

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sourceTree is a build output with the usual shapes: executables, a
// private config, a shared library and its symlink, a setuid helper, a
// name with spaces, an empty directory and a larger file.
func sourceTree(t *testing.T) string {
	src := writeTree(t, map[string]string{
		"bin/mynetd":            "#!/bin/sh\necho mynetd\n",
		"bin/helper":            "#!/bin/sh\n",
		"etc/mynet.conf":        "secret = 1\n",
		"lib/libmynet.so.1":     "elf",
		"lib/libmynet.so":       "->libmynet.so.1",
		"share/doc/read me.txt": "spaces\n",
		"var/":                  "",
	})
	os.Chmod(filepath.Join(src, "bin/mynetd"), 0o755)
	os.Chmod(filepath.Join(src, "bin/helper"), 0o755|os.ModeSetuid)
	os.Chmod(filepath.Join(src, "etc/mynet.conf"), 0o640)
	os.Chmod(filepath.Join(src, "etc"), 0o750)
	big := make([]byte, 3<<20)
	rand.Read(big)
	os.WriteFile(filepath.Join(src, "share/big.bin"), big, 0o644)
	return src
}

// localListing lists src the way remoteListing lists the host.
func remoteListing(t *testing.T, c *Client, dir string) string {
	return sh(t, c, "cd "+ShellQuote(dir)+" && find . -mindepth 1 \\( -type d -printf '%y %m %p\\n' \\) -o \\( -type l -printf '%y %p -> %l\\n' \\) -o -printf '%y %m %s %p\\n' | sort; find . -type f -print0 | sort -z | xargs -0 sha256sum")
}

func localListing(t *testing.T, dir string) string {
	out, err := execIn(dir, "find . -mindepth 1 \\( -type d -printf '%y %m %p\\n' \\) -o \\( -type l -printf '%y %p -> %l\\n' \\) -o -printf '%y %m %s %p\\n' | sort; find . -type f -print0 | sort -z | xargs -0 sha256sum")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeployIntegration(t *testing.T) {
	ln := newLabNet(t)
	host := ln.addHost("dep", "")
	c := host.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := sourceTree(t)
	d := Deploy{Src: src, Dst: "/opt/mynet"}
	const items = 7 // files and symlinks in sourceTree

	t.Run("tree", func(t *testing.T) {
		rep, err := c.Deploy(ctx, d, DeployOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sent != items || rep.Skipped != 0 || rep.Bytes < 3<<20 {
			t.Fatalf("first deploy: %v", rep)
		}
		// Modes (setuid included), symlinks, contents: the same tree.
		if got, want := remoteListing(t, c, "/opt/mynet"), localListing(t, src); got != want {
			t.Fatalf("host tree differs from source:\n--- host\n%s--- source\n%s", got, want)
		}
	})

	t.Run("unchanged redeploy sends nothing", func(t *testing.T) {
		rep, err := c.Deploy(ctx, d, DeployOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sent != 0 || rep.Skipped != items || rep.Bytes != 0 || len(rep.Changed) != 0 {
			t.Fatalf("redeploy: %v %v", rep, rep.Changed)
		}
	})

	t.Run("one changed file is the only one sent", func(t *testing.T) {
		os.WriteFile(filepath.Join(src, "etc/mynet.conf"), []byte("secret = 2\n"), 0o640)
		rep, err := c.Deploy(ctx, d, DeployOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sent != 1 || rep.Skipped != items-1 || rep.Bytes != int64(len("secret = 2\n")) {
			t.Fatalf("after one change: %v", rep)
		}
		if strings.Join(rep.Changed, ",") != "/opt/mynet/etc/mynet.conf" {
			t.Fatalf("changed %v", rep.Changed)
		}
		if got := sh(t, c, "cat /opt/mynet/etc/mynet.conf; stat -c %a /opt/mynet/etc/mynet.conf"); got != "secret = 2\n640\n" {
			t.Fatalf("on host: %q", got)
		}
		// Same size, different content: the sum, not the size, decides.
		os.WriteFile(filepath.Join(src, "etc/mynet.conf"), []byte("secret = 3\n"), 0o640)
		if rep, err := c.Deploy(ctx, d, DeployOptions{}); err != nil || rep.Sent != 1 {
			t.Fatalf("same-size change: %v %v", rep, err)
		}
	})

	t.Run("mode change is fixed without sending", func(t *testing.T) {
		os.Chmod(filepath.Join(src, "bin/mynetd"), 0o700)
		rep, err := c.Deploy(ctx, d, DeployOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sent != 0 || rep.Updated != 1 || rep.Changed[0] != "/opt/mynet/bin/mynetd" {
			t.Fatalf("mode change: %v %v", rep, rep.Changed)
		}
		if got := sh(t, c, "stat -c %a /opt/mynet/bin/mynetd"); got != "700\n" {
			t.Fatalf("mode on host %q", got)
		}
	})

	t.Run("owner", func(t *testing.T) {
		rep, err := c.Deploy(ctx, Deploy{Src: src, Dst: "/opt/owned", Owner: "nobody:nogroup"}, DeployOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := sh(t, c, "stat -c '%U:%G %a' /opt/owned /opt/owned/etc/mynet.conf /opt/owned/bin/helper"); got != "nobody:nogroup 755\nnobody:nogroup 640\nnobody:nogroup 4755\n" {
			t.Fatalf("owners %q (report %v)", got, rep)
		}
		if _, err := c.Deploy(ctx, Deploy{Src: src, Dst: "/opt/owned2", Owner: "nosuchuser"}, DeployOptions{}); err == nil || !strings.Contains(err.Error(), "no user nosuchuser") {
			t.Fatalf("unknown owner: %v", err)
		}
	})

	t.Run("no temporary files left", func(t *testing.T) {
		if got := sh(t, c, "find /opt -name '*.forgelab-tmp-*'"); got != "" {
			t.Fatalf("left: %s", got)
		}
	})

	t.Run("template", func(t *testing.T) {
		tsrc := writeTree(t, map[string]string{"mynet.conf": "peers = {{ join .Peers \",\" }}\nb = {{ ip \"b\" }}\n"})
		f := testFacts()
		if _, err := c.Deploy(ctx, Deploy{Src: tsrc, Dst: "/opt/tmpl", Template: true}, DeployOptions{Facts: &f}); err != nil {
			t.Fatal(err)
		}
		if got := sh(t, c, "cat /opt/tmpl/mynet.conf"); got != "peers = b,c\nb = 10.1.0.2\n" {
			t.Fatalf("rendered on host: %q", got)
		}
		rep, _ := c.Deploy(ctx, Deploy{Src: tsrc, Dst: "/opt/tmpl", Template: true}, DeployOptions{Facts: &f})
		if rep.Sent != 0 {
			t.Fatalf("rendered file resent: %v", rep)
		}
	})

	// Refusals leave the host exactly as it was.
	before := snapshot(t, c, "/opt", "/etc")
	for _, tc := range []struct {
		name  string
		setup string // on the host, before; undone after
		d     func() Deploy
		want  string
	}{
		{"symlink out of the source", "", func() Deploy {
			s := writeTree(t, map[string]string{"ok": "x", "passwd": "->../../../../etc/passwd"})
			return Deploy{Src: s, Dst: "/opt/esc"}
		}, "points outside"},
		{"absolute symlink", "", func() Deploy {
			s := writeTree(t, map[string]string{"ok": "x", "shadow": "->/etc/shadow"})
			return Deploy{Src: s, Dst: "/opt/esc"}
		}, "absolute target"},
		{"dotdot dst", "", func() Deploy { return Deploy{Src: src, Dst: "/opt/mynet/../../etc"} }, `".."`},
		{"root dst", "", func() Deploy { return Deploy{Src: src, Dst: "/"} }, "root directory"},
		{"missing source", "", func() Deploy { return Deploy{Src: filepath.Join(src, "no-such-dir"), Dst: "/opt/x"} }, "does not exist"},
		{"symlink on the host", "ln -s /etc /opt/mynet/share/doc2", func() Deploy {
			s := writeTree(t, map[string]string{"share/doc2/evil": "x"})
			return Deploy{Src: s, Dst: "/opt/mynet"}
		}, "symlink on the host"},
		{"file over a host directory", "", func() Deploy {
			return Deploy{Src: filepath.Join(src, "bin/mynetd"), Dst: "/opt/mynet/bin"}
		}, "end dst with /"},
	} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			if tc.setup != "" {
				sh(t, c, tc.setup)
			}
			_, err := c.Deploy(ctx, tc.d(), DeployOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error with %q", err, tc.want)
			}
			if tc.setup != "" {
				sh(t, c, "rm /opt/mynet/share/doc2")
			}
			if after := snapshot(t, c, "/opt", "/etc"); after != before {
				t.Fatalf("refused deploy changed the host:\n%s", diffLines(before, after))
			}
		})
	}
}

// Many small files: the first deploy, an unchanged redeploy (one Lstat per
// file plus one sha256sum), and a redeploy after one change.
func TestDeployManyFilesIntegration(t *testing.T) {
	ln := newLabNet(t)
	c := ln.addHost("many", "").connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	files := map[string]string{}
	for i := 0; i < 500; i++ {
		files[fmt.Sprintf("d%02d/f%03d.txt", i%20, i)] = strings.Repeat("x", i)
	}
	src := writeTree(t, files)
	d := Deploy{Src: src, Dst: "/opt/many"}
	for _, step := range []struct {
		name       string
		edit       func()
		sent, skip int
	}{
		{"first", func() {}, 500, 0},
		{"unchanged", func() {}, 0, 500},
		{"one changed", func() { os.WriteFile(filepath.Join(src, "d07/f007.txt"), []byte("yyyyyyy"), 0o644) }, 1, 499},
	} {
		step.edit()
		start := time.Now()
		rep, err := c.Deploy(ctx, d, DeployOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sent != step.sent || rep.Skipped != step.skip {
			t.Fatalf("%s: %v", step.name, rep)
		}
		t.Logf("500 files, %-11s deploy: %v in %s", step.name, rep, time.Since(start).Round(time.Millisecond))
	}
}

func TestDeployAllIntegration(t *testing.T) {
	ln := newLabNet(t)
	a, b := ln.addHost("a", ""), ln.addHost("b", "")
	ca, cb := a.connect(t), b.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := sourceTree(t)

	// One bad deploy anywhere: nothing is written anywhere.
	jobs := []HostDeploy{
		{Host: "a", Client: ca, Deploys: []Deploy{{Src: src, Dst: "/opt/mynet"}}},
		{Host: "b", Client: cb, Deploys: []Deploy{{Src: src, Dst: "/opt/mynet"}, {Src: filepath.Join(src, "missing.conf"), Dst: "/opt/mynet/etc/"}}},
	}
	_, err := DeployAll(ctx, jobs, 2)
	if err == nil || !strings.Contains(err.Error(), "host b") || !strings.Contains(err.Error(), "missing.conf does not exist") {
		t.Fatalf("got %v", err)
	}
	for _, c := range []*Client{ca, cb} {
		if got := sh(t, c, "ls -A /opt"); got != "" {
			t.Fatalf("host touched after a failed plan: %q", got)
		}
	}

	jobs[1].Deploys = jobs[1].Deploys[:1]
	start := time.Now()
	reports, err := DeployAll(ctx, jobs, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		if r.Err != nil || r.Report.Sent != 7 {
			t.Fatalf("%s: %v %v", r.Host, r.Report, r.Err)
		}
	}
	t.Logf("deployed %d files to 2 hosts in %s", 7, time.Since(start).Round(time.Millisecond))
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	in := func(l []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range l {
			m[s] = true
		}
		return m
	}
	am, bm := in(al), in(bl)
	var out []string
	for _, s := range al {
		if !bm[s] {
			out = append(out, "- "+s)
		}
	}
	for _, s := range bl {
		if !am[s] {
			out = append(out, "+ "+s)
		}
	}
	return strings.Join(out, "\n")
}

func execIn(dir, script string) (string, error) {
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	out, err := cmd.Output()
	return string(out), err
}

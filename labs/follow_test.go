package labs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
)

// logs -f LAB: every host with a service is followed over its own
// connection and every workload's output file, each line prefixed with
// host and source; a file written later, or replaced by a new run of its
// workload, is picked up; Ctrl-C ends every follower before it returns.
func TestFollowLab(t *testing.T) {
	m, _, sw := newSoftwareManager(t)
	if _, err := m.Create(context.Background(), writeSpec(t, softwareLab), CreateOptions{Accel: hypervisor.TCG}); err != nil {
		t.Fatal(err)
	}
	defer m.Destroy(context.Background(), "trio")
	st, _ := m.Store.Load("trio")
	l := m.Store.LayoutOf(st)
	write := func(name, host, stream, text string) {
		d := l.WorkloadDir(name, host)
		os.MkdirAll(d, 0o755)
		p := filepath.Join(d, name+"."+stream)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(text)
		f.Close()
	}
	write("sender", "a", "stdout", "old 1\nold 2\nold 3\n")
	ctx, cancel := context.WithCancel(context.Background())
	var out strings.Builder
	done := make(chan error, 1)
	go func() { done <- m.FollowLab(ctx, "trio", 2, true, &syncWriter{b: &out}) }()
	time.Sleep(500 * time.Millisecond)
	write("sender", "a", "stdout", `{"rate": 1}`+"\nhalf a li")
	write("pingers", "b", "stderr", "unreachable\n")
	time.Sleep(400 * time.Millisecond)
	write("sender", "a", "stdout", "ne\n")
	os.Remove(filepath.Join(l.WorkloadDir("pingers", "b"), "pingers.stderr")) // a new run of it
	write("pingers", "b", "stderr", "again\n")
	time.Sleep(400 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("FollowLab did not return after Ctrl-C")
	}
	got := out.String()
	for _, want := range []string{
		"a server | 2026-12-02T02:30:00+0000 a server[12]: log of  on a\n",
		"b systemd | 2026-12-02T02:30:01+0000 b systemd[1]: Started forgelab-server.service\n",
		"b systemd |   continued\n",
		"c server | ",
		"a workload sender | old 2\n",
		"a workload sender | old 3\n",
		"a workload sender | {\"rate\": 1}\n",
		"a workload sender | half a line\n",
		"b workload pingers stderr | unreachable\n",
		"b workload pingers stderr | again\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "old 1") {
		t.Errorf("more than the last 2 lines of a file at the start:\n%s", got)
	}
	if f, u := sw.events("follow "), sw.events("unfollow "); len(f) != 3 || len(u) != 3 {
		t.Errorf("followers: started %v, stopped %v; want one per host, all stopped", f, u)
	}
}

// A lab that is not there, or not ready, says so.
func TestFollowLabRefuses(t *testing.T) {
	m, _, _ := newSoftwareManager(t)
	if err := m.FollowLab(context.Background(), "nope", 10, false, &strings.Builder{}); err == nil {
		t.Error("no error for a lab that does not exist")
	}
}

func TestServiceSources(t *testing.T) {
	for _, tt := range []struct {
		parse      func(string, string) (string, bool)
		line, last string
		src        string
		show       bool
	}{
		{journalSource, "2026-12-02T02:30:00+0000 a babeld[880]: hello", "", "babeld", true},
		{journalSource, "2026-12-02T02:30:00+0000 a kernel: eth1 up", "babeld", "kernel", true},
		{journalSource, "    at main.go:12", "babeld", "babeld", true},
		{journalSource, "-- No entries --", "", "service", true},
		{tailSource, "==> /run/forgelab/services/web/log <==", "", "web", false},
		{tailSource, "listening on :80", "web", "web", true},
		{tailSource, "", "", "", false},
	} {
		src, show := tt.parse(tt.line, tt.last)
		if src != tt.src || show != tt.show {
			t.Errorf("%q after %q: %q %v, want %q %v", tt.line, tt.last, src, show, tt.src, tt.show)
		}
	}
}

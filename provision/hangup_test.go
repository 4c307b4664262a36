package provision

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A follower wrapped by untilHangup ends when its session's stdin closes
// (what sshd does when the session ends), even when it prints nothing,
// and ends the session when it ends by itself; here sh stands in for the
// remote shell.
func TestUntilHangup(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cmd    string
		cancel bool
		want   string
	}{
		{"a silent follower ends with the session", "echo started; sleep 300", true, "started\n"},
		{"a command that ends ends the session", "echo done", false, "done\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wrapped, stdin := untilHangup(ctx, tt.cmd)
			c := exec.Command("sh", "-c", wrapped)
			// As an SSH session does: stdin copied in, and no waiting for
			// the copy once the command has exited.
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			go func() { io.Copy(pw, stdin); pw.Close() }()
			c.Stdin = pr
			var out strings.Builder
			c.Stdout = &out
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			if tt.cancel {
				time.Sleep(300 * time.Millisecond)
				cancel()
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				c.Process.Kill()
				t.Fatal("still running 5 s later")
			}
			if out.String() != tt.want {
				t.Errorf("output %q, want %q", out.String(), tt.want)
			}
		})
	}
}

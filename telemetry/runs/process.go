package runs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Process identifies the recorder's process well enough to tell, later and
// from another process, whether it still runs: a pid alone is not enough,
// since pids are reused, so the kernel's start time of the process and the
// boot it belongs to are kept too.
type Process struct {
	PID int `json:"pid"`
	// StartTicks is field 22 of /proc/PID/stat: clock ticks from boot to
	// the start of the process.
	StartTicks uint64 `json:"start_ticks"`
	BootID     string `json:"boot_id"` // /proc/sys/kernel/random/boot_id
	Host       string `json:"host"`    // hostname, for messages
}

// Self describes the calling process, e.g. for a marker that another
// process checks with Alive.
func Self() Process { return self() }

// self describes the calling process.
func self() Process {
	p := Process{PID: os.Getpid(), BootID: bootID()}
	p.StartTicks, _ = startTicks(p.PID)
	p.Host, _ = os.Hostname()
	return p
}

// Alive reports whether the process p describes is still running: same
// boot, same pid, same start time, not a zombie.
func (p Process) Alive() bool {
	if p.PID <= 0 || p.BootID == "" || p.BootID != bootID() {
		return false
	}
	if err := syscall.Kill(p.PID, 0); err != nil && err != syscall.EPERM {
		return false
	}
	ticks, err := startTicks(p.PID)
	return err == nil && ticks == p.StartTicks
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// startTicks reads a live (not zombie) process's start time from
// /proc/PID/stat.
func startTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d has ended", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

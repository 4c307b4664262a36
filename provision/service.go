package provision

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"
)

// Service is long-running software started on a host: a systemd unit
// forgelab-<Name>.service, or on a host without systemd a process that
// forgelab supervises itself (see Services).
type Service struct {
	Name    string            // [A-Za-z0-9_.-], unique on the host
	Command string            // run by /bin/sh -c
	WorkDir string            // absolute; "" is / (systemd) or the service's runtime directory
	Env     map[string]string // extra environment
	Restart string            // systemd Restart=: no | on-failure (default) | on-success | on-abnormal | on-abort | on-watchdog | always
	User    string            // run as this user; "" is root

	// Ready says when the service is ready: "tcp://HOST:PORT" (connects),
	// "http://..." or "https://..." (answers 2xx or 3xx), "cmd:COMMAND"
	// (exits 0). Checked from inside the host. "" means ready once running.
	Ready        string
	ReadyTimeout time.Duration // default 60s

	// Oneshot: the command sets something up and exits (systemd
	// Type=oneshot, RemainAfterExit): Install enables it, so it runs again
	// at every boot, and the service is ready once the command succeeded.
	// Systemd only; Restart does not apply.
	Oneshot bool
	// Undo, for a Oneshot, takes back what Command set up (ExecStop): it
	// runs when the unit stops, as it does when destroy removes it from an
	// adopted host, which must get back exactly what it had.
	Undo string

	// Uses lists host paths the service runs from: a deploy that changes
	// anything under them restarts it. Default: WorkDir and the command's
	// executable when it is an absolute path.
	Uses []string
}

var serviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
var userName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*\$?$`)

var restartPolicies = map[string]bool{
	"no": true, "on-success": true, "on-failure": true, "on-abnormal": true,
	"on-abort": true, "on-watchdog": true, "always": true,
}

// Unit is the systemd unit name of the service.
func (s Service) Unit() string { return "forgelab-" + s.Name + ".service" }

// EnvDir holds the services' environment files: root's alone (0700), as
// is each file (0600), since env values are often secrets (tokens,
// passwords; the coordination service's URL carries the lab's token).
// The unit file, which any user can read, only names its file.
const EnvDir = "/etc/forgelab"

// EnvFile is where the service's environment is on the host.
func (s Service) EnvFile() string { return path.Join(EnvDir, s.Name+".env") }

// EnvFileText renders Env for systemd's EnvironmentFile=: sorted
// KEY="VALUE" lines, with \ " ` $ escaped inside the double quotes
// (systemd takes the rest, newlines too, as they are).
func (s Service) EnvFileText() (string, error) {
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		if !validEnvName(k) {
			return "", fmt.Errorf("service %s: environment variable name %q: use letters, digits and _", s.Name, k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Written by forgelab for service " + s.Name + "; removed by forgelab destroy.\n")
	for _, k := range keys {
		v := s.Env[k]
		b.WriteString(k + "=\"")
		for _, r := range v {
			if strings.ContainsRune("\\\"`$", r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteString("\"\n")
	}
	return b.String(), nil
}

func (s Service) restart() string {
	if s.Oneshot {
		return "no"
	}
	if s.Restart == "" {
		return "on-failure"
	}
	return s.Restart
}

func (s Service) readyTimeout() time.Duration {
	if s.ReadyTimeout <= 0 {
		return 60 * time.Second
	}
	return s.ReadyTimeout
}

// Validate checks the service without a host.
func (s Service) Validate() error {
	if !serviceName.MatchString(s.Name) {
		return fmt.Errorf("service name %q: use letters, digits, _ . - (at most 64)", s.Name)
	}
	if strings.TrimSpace(s.Command) == "" {
		return fmt.Errorf("service %s: command is empty", s.Name)
	}
	if s.WorkDir != "" && (!path.IsAbs(s.WorkDir) || strings.ContainsAny(s.WorkDir, "\n\r")) {
		return fmt.Errorf("service %s: workdir %q is not an absolute path", s.Name, s.WorkDir)
	}
	if s.User != "" && !userName.MatchString(s.User) {
		return fmt.Errorf("service %s: user %q is not a user name", s.Name, s.User)
	}
	if s.Oneshot && s.Restart != "" && s.Restart != "no" {
		return fmt.Errorf("service %s: a oneshot service is not restarted (leave restart out)", s.Name)
	}
	if !restartPolicies[s.restart()] {
		return fmt.Errorf("service %s: restart %q: want no, on-failure, on-success, on-abnormal, on-abort, on-watchdog or always", s.Name, s.Restart)
	}
	for k := range s.Env {
		if !validEnvName(k) {
			return fmt.Errorf("service %s: environment variable name %q: use letters, digits and _", s.Name, k)
		}
	}
	if _, err := readyCommand(s.Ready); err != nil {
		return fmt.Errorf("service %s: %w", s.Name, err)
	}
	return nil
}

// Rendered returns the service with Command, WorkDir, Env values and Ready
// rendered as templates over f.
func (s Service) Rendered(f Facts) (Service, error) {
	var err error
	r := func(field, text string) string {
		if err != nil || !strings.Contains(text, "{{") {
			return text
		}
		var out string
		out, err = Render("service "+s.Name+" "+field, text, f)
		return out
	}
	out := s
	out.Command = r("command", s.Command)
	out.WorkDir = r("workdir", s.WorkDir)
	out.Ready = r("ready", s.Ready)
	if s.Env != nil {
		out.Env = make(map[string]string, len(s.Env))
		for k, v := range s.Env {
			out.Env[k] = r("env "+k, v)
		}
	}
	return out, err
}

// Affected reports whether a deploy that changed these host paths touches
// what the service runs from.
func (s Service) Affected(changed []string) bool {
	uses := s.Uses
	if len(uses) == 0 {
		if s.WorkDir != "" {
			uses = append(uses, s.WorkDir)
		}
		if f := strings.Fields(s.Command); len(f) > 0 && path.IsAbs(f[0]) {
			uses = append(uses, f[0])
		}
	}
	for _, c := range changed {
		for _, u := range uses {
			u = path.Clean(u)
			if c == u || strings.HasPrefix(c, strings.TrimSuffix(u, "/")+"/") {
				return true
			}
		}
	}
	return false
}

// systemdQuote quotes one word for a unit file: double quotes with C
// escapes, % doubled (specifiers) and, when dollar is set, $ doubled (so the
// shell, not systemd, expands variables).
func systemdQuote(s string, dollar bool) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '%':
			b.WriteString("%%")
		case '$':
			if dollar {
				b.WriteString("$$")
			} else {
				b.WriteByte('$')
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var unitTemplate = template.Must(template.New("unit").Funcs(template.FuncMap{
	"q":   func(s string) string { return systemdQuote(s, true) },
	"pct": func(s string) string { return strings.ReplaceAll(s, "%", "%%") },
}).Parse(`# Written by forgelab for service {{.Name}}; removed by forgelab destroy.
[Unit]
Description=forgelab service {{.Name}}
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=0

[Service]
{{- if .Oneshot}}
Type=oneshot
RemainAfterExit=yes
{{- else}}
Type=simple
{{- end}}
ExecStart=/bin/sh -c {{q .Command}}
{{- if and .Oneshot .Undo}}
ExecStop=/bin/sh -c {{q .Undo}}
{{- end}}
{{- if .WorkDir}}
WorkingDirectory={{pct .WorkDir}}
{{- end}}
{{- if .User}}
User={{.User}}
{{- end}}
{{- if .Env}}
EnvironmentFile={{pct .EnvFile}}
{{- end}}
{{- if not .Oneshot}}
Restart={{.Restart}}
RestartSec=1s
{{- end}}

[Install]
WantedBy=multi-user.target
`))

// UnitFile renders the systemd unit of the service.
func (s Service) UnitFile() (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	v := s
	v.Restart = s.restart()
	var b bytes.Buffer
	if err := unitTemplate.Execute(&b, v); err != nil {
		return "", fmt.Errorf("render unit of %s: %w", s.Name, err)
	}
	return b.String(), nil
}

// supervisorScript is what runs the service on a host without systemd: a
// shell loop with the unit's restart policy, in its own session so Stop can
// signal the whole process group.
func (s Service) supervisorScript() (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	env, err := envExports(s.Env)
	if err != nil {
		return "", err
	}
	run := "sh -c " + ShellQuote(s.Command)
	if s.User != "" {
		run = "runuser -u " + ShellQuote(s.User) + " -- " + run
	}
	// systemd's policies by exit status; signals and watchdogs count as failures here.
	policy := map[string]string{
		"no":          `exit $rc`,
		"on-success":  `[ $rc -eq 0 ] || exit $rc`,
		"on-failure":  `[ $rc -ne 0 ] || exit 0`,
		"on-abnormal": `[ $rc -gt 128 ] || exit $rc`,
		"on-abort":    `[ $rc -gt 128 ] || exit $rc`,
		"on-watchdog": `[ $rc -gt 128 ] || exit $rc`,
		"always":      `:`,
	}[s.restart()]
	workdir := "."
	if s.WorkDir != "" {
		workdir = s.WorkDir
	}
	return fmt.Sprintf(`#!/bin/sh
# Written by forgelab for service %[1]s: this host has no systemd, so
# forgelab supervises it (restart policy %[2]s). Removed by forgelab destroy.
cd -- %[3]s || exit 1
%[4]swhile :; do
	echo "forgelab: starting %[1]s"
	%[5]s
	rc=$?
	echo "forgelab: %[1]s exited with status $rc"
	%[6]s
	sleep 1
done
`, s.Name, s.restart(), ShellQuote(workdir), env, run, policy), nil
}

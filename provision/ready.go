package provision

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

var hostChars = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// readyCommand turns a readiness check into a shell command that exits 0
// when the service is ready. Checks run on the host itself, so they see
// what the service's clients see there (127.0.0.1 is the host's own).
//
//	tcp://HOST:PORT  bash's /dev/tcp connects within 2 s
//	http(s)://...    curl gets a 2xx or 3xx within 2 s; for http without
//	                 curl on the host, bash sends the GET itself
//	cmd:COMMAND      the command exits 0
func readyCommand(ready string) (string, error) {
	switch {
	case ready == "":
		return "", nil
	case strings.HasPrefix(ready, "cmd:"):
		cmd := strings.TrimSpace(strings.TrimPrefix(ready, "cmd:"))
		if cmd == "" {
			return "", fmt.Errorf("ready %q: command is empty", ready)
		}
		return cmd, nil
	case strings.HasPrefix(ready, "tcp://"):
		host, port, err := readyHostPort(ready, strings.TrimPrefix(ready, "tcp://"), "")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("timeout 2 bash -c %s", ShellQuote(fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port))), nil
	case strings.HasPrefix(ready, "http://"), strings.HasPrefix(ready, "https://"):
		u, err := url.Parse(ready)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("ready %q: not a URL", ready)
		}
		defPort := "80"
		if u.Scheme == "https" {
			defPort = "443"
		}
		host, port, err := readyHostPort(ready, u.Host, defPort)
		if err != nil {
			return "", err
		}
		curl := "curl -fsS -o /dev/null --max-time 2 " + ShellQuote(ready)
		if u.Scheme == "https" {
			return fmt.Sprintf("if command -v curl >/dev/null 2>&1; then %s; else echo 'https readiness checks need curl on the host' >&2; exit 2; fi", curl), nil
		}
		reqPath := u.RequestURI()
		get := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%s && printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' >&3 && head -n 1 <&3 | grep -Eq '^HTTP/[0-9.]+ [23]'`,
			host, port, strings.ReplaceAll(reqPath, "'", ""), u.Host)
		return fmt.Sprintf("if command -v curl >/dev/null 2>&1; then %s; else timeout 3 bash -c %s; fi", curl, ShellQuote(get)), nil
	default:
		return "", fmt.Errorf("ready %q: want tcp://HOST:PORT, http://URL, https://URL or cmd:COMMAND", ready)
	}
}

func readyHostPort(ready, hostport, defPort string) (string, string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		if defPort == "" {
			return "", "", fmt.Errorf("ready %q: want HOST:PORT", ready)
		}
		host, port = strings.Trim(hostport, "[]"), defPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("ready %q: port %q is not 1-65535", ready, port)
	}
	if !hostChars.MatchString(host) {
		return "", "", fmt.Errorf("ready %q: host %q is not a host name or address", ready, host)
	}
	return host, port, nil
}

package provision

import (
	"fmt"
	"path"
	"text/template"
)

// Checks a lab file parser runs without a host, so that mistakes are
// reported with their line before anything is made.

// CheckDst checks a deploy destination: absolute, no "..", not a
// top-level or kernel directory. A dst ending in "/" is a directory a file
// goes into.
func CheckDst(dst string) error {
	if len(dst) > 1 && dst[len(dst)-1] == '/' {
		_, err := cleanDst(dst + "x")
		return err
	}
	_, err := cleanDst(dst)
	return err
}

// CheckOwner checks "user" or "user:group".
func CheckOwner(owner string) error {
	_, _, err := splitOwner(owner)
	return err
}

// CheckExclude checks a path.Match pattern.
func CheckExclude(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return nil
}

// CheckReady checks a readiness check: tcp://HOST:PORT, http(s)://URL or
// cmd:COMMAND (a template in it is checked once rendered).
func CheckReady(ready string) error {
	_, err := readyCommand(ready)
	return err
}

// ValidName reports whether name can name a service or workload: letters,
// digits, _ . - (at most 64, starting with a letter or digit).
func ValidName(name string) bool { return serviceName.MatchString(name) }

// ValidUser reports whether u looks like a user name.
func ValidUser(u string) bool { return userName.MatchString(u) }

// ValidRestart reports whether r is a systemd Restart= policy.
func ValidRestart(r string) bool { return restartPolicies[r] }

// ValidEnvName reports whether k can be an environment variable name.
func ValidEnvName(k string) bool { return validEnvName(k) }

// ParseTemplate checks the syntax of a template and that it calls only
// known functions; what it refers to is checked when it is rendered.
func ParseTemplate(name, text string) error {
	_, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs(Facts{})).Parse(text)
	return err
}

// Check plans d as a deploy would, without a host: the source exists,
// no symlink in it escapes it, templates render over facts. It reads (and
// hashes) every file once.
func (d Deploy) Check(facts *Facts) error {
	_, err := planDeploy(d, facts)
	return err
}

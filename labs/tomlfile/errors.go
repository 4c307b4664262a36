// Package tomlfile reads hand-checked TOML files (lab files, scenarios,
// bench files) so that every problem names its file and line: errors with
// positions, the line of each key, which the toml library does not give
// per array element, and Table, which reads a decoded table key by key.
package tomlfile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is one problem in a file, at a line (0: the file as a whole).
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errors is every problem found, in line order, one a line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// SyntaxError turns the toml library's parse error into Errors with a line.
func SyntaxError(file string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return Errors{{File: file, Line: pe.Position.Line, Msg: "not valid TOML: " + pe.Message}}
	}
	return Errors{{File: file, Msg: "not valid TOML: " + err.Error()}}
}

// FieldError is one problem with one key of a table. Field is the key as
// written in the file ("speed", "points[2].distance"), so a caller can
// point at its line.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

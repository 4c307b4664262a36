package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The commands only parse flags, call labs and print: no command reaches
// libvirt or a link shaper itself. hypervisor is imported only for the
// types and constants of flags (host actions, the default libvirt URI).
func TestCommandsStayThin(t *testing.T) {
	forbidden := []string{
		"github.com/forgelab/forgelab/netfabric/kernel",
		"github.com/forgelab/forgelab/netfabric/userspace",
		"github.com/forgelab/forgelab/netfabric/guest",
	}
	flagOnly := map[string]bool{"HostAction": true, "HostActions": true, "DefaultURI": true,
		"ActionStop": true, "ActionStart": true, "ActionKill": true, "ActionPause": true, "ActionResume": true, "ActionReboot": true}
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		hv := ""
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad {
					t.Errorf("%s imports %s: go through labs' control path instead", name, path)
				}
			}
			if path == "github.com/forgelab/forgelab/hypervisor" {
				hv = "hypervisor"
				if imp.Name != nil {
					hv = imp.Name.Name
				}
			}
		}
		if hv == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == hv && !flagOnly[sel.Sel.Name] {
				t.Errorf("%s: %s uses hypervisor.%s: only flag types belong in a command", name, fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}

// A host kind is named in one place: the string "physical" is a Go
// string literal once in the source (labs/spec/names.go); every other use
// goes through the host-kind types.
func TestPhysicalNamedOnce(t *testing.T) {
	var found []string
	root := filepath.Join("..", "..")
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && s == "physical" {
					found = append(found, path)
				}
			}
			return true
		})
		return nil
	})
	if len(found) != 1 || filepath.ToSlash(found[0]) != "../../labs/spec/names.go" {
		t.Errorf(`"physical" appears in %v, want only labs/spec/names.go`, found)
	}
}

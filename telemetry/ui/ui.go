// Package ui is forgelab serve's web page: plain HTML, CSS and ES modules
// in static/, with the JavaScript libraries vendored from npm in
// static/vendor/ (vendor.sh refreshes them from package-lock.json), all
// embedded so the page works with no network.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// FS is the page's files, index.html at its root.
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // "static" is embedded above: cannot happen
	}
	return sub
}

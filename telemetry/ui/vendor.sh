#!/usr/bin/env bash
# Refreshes the web UI's vendored JavaScript libraries from the npm registry:
# installs exactly what package-lock.json pins and copies the files the page
# loads (and their licences) into static/vendor/, which is committed so that
# `go build` needs neither npm nor a network. To move to a newer version:
# change package.json, run `npm install --ignore-scripts` here to update the
# lock file, then this script, and commit all three.
set -euo pipefail
cd "$(dirname "$0")"
command -v npm >/dev/null || { echo "vendor.sh: npm is missing: apt-get install -y npm" >&2; exit 1; }
npm ci --ignore-scripts --no-audit --no-fund
out=static/vendor
rm -rf "$out"
mkdir -p "$out"
copy() { # package file [name]
  cp "node_modules/$1/$2" "$out/${3:-$(basename "$2")}"
}
copy cytoscape dist/cytoscape.min.js
copy cytoscape LICENSE cytoscape.LICENSE
copy uplot dist/uPlot.iife.min.js
copy uplot dist/uPlot.min.css
copy uplot LICENSE uplot.LICENSE
copy 3d-force-graph dist/3d-force-graph.min.js
copy 3d-force-graph LICENSE 3d-force-graph.LICENSE
copy three LICENSE three.LICENSE
node -e '
  const lock = require("./package-lock.json");
  for (const p of ["cytoscape", "uplot", "3d-force-graph", "three"])
    console.log(p, lock.packages["node_modules/" + p].version, lock.packages["node_modules/" + p].integrity);
' > "$out/VERSIONS"
echo "vendor.sh: $(wc -l < "$out/VERSIONS") libraries in $out:"
cat "$out/VERSIONS"

#!/usr/bin/env bash
# Vendor the web UI's front-end files from the npm registry at pinned versions
# (`make ui-vendor`): each file is copied with its package's licence, and
# src/joblet/ui/static/vendor/VENDOR.lock records name, version and sha256 of
# every file (tests/unit/ui/test_vendor.py checks them). Nothing is fetched at
# run time and nothing is built.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/joblet/ui/static/vendor
# package@version  file-in-package  vendored-name
files=(
  "htmx.org@2.0.11 dist/htmx.min.js htmx.min.js"
  "htmx-ext-sse@2.2.4 dist/sse.min.js htmx-ext-sse.min.js"
  "uplot@1.6.32 dist/uPlot.iife.min.js uPlot.iife.min.js"
  "uplot@1.6.32 dist/uPlot.min.css uPlot.min.css"
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
lock="$dest/VENDOR.lock"
echo "# package@version file sha256 (scripts/vendor_ui.sh writes it)" >"$lock.new"
for entry in "${files[@]}"; do
  read -r pkg inner name <<<"$entry"
  dir="$work/${pkg//[@\/]/_}"
  if [[ ! -d $dir ]]; then
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$pkg" >/dev/null && tar -xzf ./*.tgz)
    cp "$dir/package/LICENSE" "$dest/LICENSE.${pkg%@*}" 2>/dev/null || true
  fi
  cp "$dir/package/$inner" "$dest/$name"
  echo "$pkg $name $(sha256sum "$dest/$name" | cut -d' ' -f1)" >>"$lock.new"
done
mv "$lock.new" "$lock"
echo "vendored into $dest"

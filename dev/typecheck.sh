#!/usr/bin/env bash
# mypy --strict on the package.  The repository maps top-level folders into `ebr`
# (pyproject's package-dir), which mypy cannot follow from source paths, so check a
# temporary tree of symlinks laid out as the installed package.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/ebr"
for f in "$root"/plugin/*; do ln -s "$f" "$tree/ebr/$(basename "$f")"; done
for sub in mappings cli encoders ingest; do ln -s "$root/$sub" "$tree/ebr/$sub"; done
cd "$tree" && python -m mypy --config-file "$root/pyproject.toml" -p ebr "$@"

#!/usr/bin/env bash
# Installs the reference JavaScript OpenTimestamps implementation (npm
# opentimestamps 0.4.9, pinned by scripts/ots-reference/package-lock.json)
# into scripts/ots-reference/node_modules and prints the path of its
# ots-cli.js. Idempotent: an install matching the lock file is kept.
#
# opentimestamps depends on the npm placeholder fs@0.0.1-security, which the
# registry here does not serve; package.json overrides it with an empty local
# package (Node's built-in fs is what the code uses anyway).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/scripts/ots-reference
cli=$dir/node_modules/opentimestamps/ots-cli.js

if [ -f "$cli" ] && cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.installed"; then
	echo "$cli"
	exit 0
fi
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
cp "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.installed"
echo "$cli"

#!/usr/bin/env bash
# Installs local-kms (github.com/nsmithuk/local-kms), the KMS emulator the
# anchors/kms tests run against, into bin/tools/ of this repository, and
# prints the binary's path. Idempotent: a binary already built from the
# pinned version is kept. Override the directory with LOCAL_KMS_BIN_DIR.
#
# The tests find the binary at that path, or wherever DOCKET_LOCAL_KMS points.
set -euo pipefail

module=github.com/nsmithuk/local-kms
version=v0.0.0-20260228092603-2a5e92d09ab6

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${LOCAL_KMS_BIN_DIR:-$root/bin/tools}
bin=$dir/local-kms
go=${GO:-go}

# `go version -m` reads the module path and version the binary was built from.
if [ -x "$bin" ] && "$go" version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|$)"; then
	echo "$bin"
	exit 0
fi

mkdir -p "$dir"
# `go install module@version` builds in module mode apart from this go.mod;
# GOFLAGS is cleared so a -mod setting meant for the project cannot refuse it.
GOBIN="$dir" GOFLAGS= "$go" install "$module@$version" >&2
echo "$bin"

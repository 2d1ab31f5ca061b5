#!/usr/bin/env bash
# Installs Debian's curl and jq for the README's walk-through
# (scripts/walkthrough.sh, run by test/walkthrough_test.go). Idempotent:
# installed tools are kept.
set -euo pipefail
if command -v curl >/dev/null 2>&1 && command -v jq >/dev/null 2>&1; then
	exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q curl jq >&2 || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q curl jq >&2; }

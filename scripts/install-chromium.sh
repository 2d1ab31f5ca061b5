#!/usr/bin/env bash
# Installs Debian's Chromium for the portal's browser tests (chromedp drives
# it headless) and prints its path. Idempotent: an installed Chromium is kept.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
	command -v chromium
	exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q chromium >&2 || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q chromium >&2; }
command -v chromium

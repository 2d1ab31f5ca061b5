#!/usr/bin/env bash
# Installs Debian's poppler-utils for the evidence binder's PDF tests
# (pdftotext extracts the binder's text, pdftoppm renders pages to PNG) and
# prints pdftotext's path. Idempotent: installed tools are kept.
set -euo pipefail
if command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1; then
	command -v pdftotext
	exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q poppler-utils >&2 || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q poppler-utils >&2; }
command -v pdftotext

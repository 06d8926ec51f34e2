#!/usr/bin/env bash
# Debian packages that tests and later features need: Prometheus (metrics), Chromium (browser
# tests), Thai and emoji fonts (Thai text and emoji render as boxes in headless Chromium without them).
# Installs only what is missing, and only as root; otherwise it warns and carries on.
set -euo pipefail

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg -s fonts-thai-tlwg >/dev/null 2>&1 || missing+=(fonts-thai-tlwg)
dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || missing+=(fonts-noto-color-emoji)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "WARNING: missing system packages: ${missing[*]}." >&2
    echo "         Tests that need them will fail or skip. Install them with:" >&2
    echo "         sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 0
fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

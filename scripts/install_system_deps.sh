#!/usr/bin/env bash
# Debian packages that tests and later features need: Prometheus (metrics), Chromium (browser
# tests), Thai and emoji fonts (Thai text and emoji render as boxes in headless Chromium without them).
# Installs only what is missing, and only as root; otherwise it warns and carries on.
# `install_system_deps.sh prometheus` (make run) checks Prometheus alone: the console's own machine needs no
# browser or fonts, its users' browsers draw the pages.
set -euo pipefail

wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(prometheus chromium fonts)
missing=()
for want in "${wanted[@]}"; do
    case "$want" in
        # PROMETHEUS_BIN (a binary of one's own) or PROMETHEUS_URL (a running server): nothing to install.
        prometheus) [ -n "${PROMETHEUS_BIN:-}${PROMETHEUS_URL:-}" ] || command -v prometheus >/dev/null 2>&1 \
                        || missing+=(prometheus) ;;
        chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
        fonts)
            dpkg -s fonts-thai-tlwg >/dev/null 2>&1 || missing+=(fonts-thai-tlwg)
            dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || missing+=(fonts-noto-color-emoji) ;;
        *) echo "install_system_deps.sh: unknown part '$want' (prometheus, chromium, fonts)" >&2; exit 2 ;;
    esac
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "WARNING: missing system packages: ${missing[*]}." >&2
    echo "         What needs them will not work (tests fail; without Prometheus the Metrics page has no data)." >&2
    echo "         Install them with:" >&2
    echo "         sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 0
fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# promtool, for the test suite's checks of prometheus.yml and alerts.yml: taken from
# Debian's `prometheus` package without installing it (no daemon, no user, no service),
# into the tools cache outside the checkout. Idempotent: a second run only checks.
set -euo pipefail

BIN="${URNE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/urne/tools}/bin"
VERSION="2.42.0+ds-5+deb12u1"  # Debian 12's; pinned so every run checks with one promtool

if [ -x "$BIN/promtool" ] && "$BIN/promtool" --version 2>&1 | grep -q "version 2.42.0"; then
    echo "[promtool] $BIN/promtool present"
    exit 0
fi
mkdir -p "$BIN"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt-get download needs the package lists; a fresh machine may have none yet.
if ! apt-get download "prometheus=$VERSION" >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get download "prometheus=$VERSION"
fi
dpkg-deb -x prometheus_*.deb root
install -m 0755 root/usr/bin/promtool "$BIN/promtool"
echo "[promtool] installed $("$BIN/promtool" --version 2>&1 | head -1) in $BIN"

#!/usr/bin/env bash
# What the browser tests of the web pages (tests/web/) need, installed beforehand so the
# tests reach no network beyond loopback: Debian's `chromium` package (Playwright for
# Python drives it; its own browser downloads are never used) and axe-core, pinned, from
# the npm registry, checked against its published integrity, into the tools cache outside
# the checkout. Idempotent: a second run only checks.
#
#   infra/browser/install.sh            # install what is missing
#   URNE_TOOLS_DIR=/elsewhere infra/browser/install.sh
#   URNE_CHROMIUM=/opt/chromium/chrome infra/browser/install.sh   # a browser of your own
set -euo pipefail

AXE_VERSION=4.14.1  # npm's axe-core; its dist.integrity (npm view axe-core@4.14.1 dist):
AXE_INTEGRITY="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="

TOOLS="${URNE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/urne/tools}"
CHROMIUM="${URNE_CHROMIUM:-/usr/bin/chromium}"
AXE_DIR="$TOOLS/axe-core-$AXE_VERSION"

log() { printf '[browser] %s\n' "$*"; }
die() { printf '[browser] ERROR: %s\n' "$*" >&2; exit 1; }

# Chromium: Debian's package, unless URNE_CHROMIUM names a browser already there.
if [ -x "$CHROMIUM" ]; then
    log "chromium present: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
elif [ "$CHROMIUM" != /usr/bin/chromium ]; then
    die "URNE_CHROMIUM=$CHROMIUM is not an executable file"
else
    [ "$(id -u)" -eq 0 ] || die "chromium is missing and installing it needs root: run this as root, or apt-get install chromium"
    log "chromium missing; installing Debian's chromium package (apt-get, no recommends)"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be missing (fresh machine) or stale (a 404 on a superseded
    # version): then one `apt-get update`, and the install once more.
    if ! apt-get install -y -q --no-install-recommends chromium; then
        log "apt-get install failed; updating the package lists once and retrying"
        apt-get update -q
        apt-get install -y -q --no-install-recommends chromium
    fi
    [ -x "$CHROMIUM" ] || die "$CHROMIUM still missing after apt-get install chromium"
    log "chromium installed: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
fi

# axe-core: only axe.min.js (and the licence) is kept, in axe-core-<version>/.
if [ -s "$AXE_DIR/axe.min.js" ]; then
    log "axe-core $AXE_VERSION present: $AXE_DIR/axe.min.js"
    exit 0
fi
command -v npm >/dev/null 2>&1 || die "npm is needed to fetch axe-core (apt-get install npm)"
mkdir -p "$TOOLS"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "fetching axe-core $AXE_VERSION from the npm registry ($(npm config get registry))"
(cd "$work" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null)
tarball="$work/axe-core-$AXE_VERSION.tgz"
[ -s "$tarball" ] || die "npm pack axe-core@$AXE_VERSION gave no $tarball"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[ "$got" = "$AXE_INTEGRITY" ] || die "axe-core $AXE_VERSION tarball integrity $got, expected $AXE_INTEGRITY"
tar -xzf "$tarball" -C "$work" package/axe.min.js package/LICENSE
grep -qF "axe.version=\"$AXE_VERSION\"" "$work/package/axe.min.js" \
    || die "axe.min.js does not say axe.version=\"$AXE_VERSION\""
# Into place in one move: a half-written folder is never taken for an installed one.
rm -rf "$AXE_DIR.tmp"
mkdir -p "$AXE_DIR.tmp"
install -m 0644 "$work/package/axe.min.js" "$work/package/LICENSE" "$AXE_DIR.tmp/"
rm -rf "$AXE_DIR"
mv "$AXE_DIR.tmp" "$AXE_DIR"
log "axe-core $AXE_VERSION installed: $AXE_DIR/axe.min.js"

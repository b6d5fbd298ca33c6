#!/usr/bin/env bash
# Fetch Apache Cassandra (cassandra-all, version pinned in pom.xml) and its
# runtime jars from Maven Central into $URNE_CASSANDRA_LIB_DIR (see common.sh).
# Idempotent: does nothing when the jars for the pinned version are there.
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/common.sh"

marker="$CASSANDRA_LIB_DIR/.complete-$CASSANDRA_VERSION"

installed() {
    [[ -f "$marker" ]] \
        && [[ -f "$CASSANDRA_LIB_DIR/cassandra-all-$CASSANDRA_VERSION.jar" ]] \
        && compgen -G "$CASSANDRA_LIB_DIR/jamm-*.jar" >/dev/null \
        && compgen -G "$CASSANDRA_LIB_DIR/logback-classic-*.jar" >/dev/null
}

if installed; then
    log "Cassandra $CASSANDRA_VERSION already installed in $CASSANDRA_LIB_DIR"
    exit 0
fi

# Serialise concurrent installs (own lock file: start.sh holds the state lock).
lib_parent="$(dirname "$CASSANDRA_LIB_DIR")"
mkdir -p "$lib_parent"
exec 8>"$lib_parent/.install.lock"
flock -w 900 8 || die "timed out waiting for another install to finish"
if installed; then
    log "Cassandra $CASSANDRA_VERSION already installed in $CASSANDRA_LIB_DIR"
    exit 0
fi

command -v mvn >/dev/null 2>&1 || die "Maven (mvn) not found; install it (e.g. apt-get install -y maven)"

tmp="$CASSANDRA_LIB_DIR.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
log "fetching cassandra-all $CASSANDRA_VERSION and its runtime jars from Maven Central (about 70 MB) ..."
started=$SECONDS
if ! mvn -B -q -f "$CASSANDRA_SCRIPT_DIR/pom.xml" dependency:copy-dependencies \
        "-Dcassandra.lib.dir=$tmp" >"$lib_parent/install.log" 2>&1; then
    tail -n 40 "$lib_parent/install.log" >&2 || true
    die "maven failed; full output in $lib_parent/install.log"
fi
[[ -f "$tmp/cassandra-all-$CASSANDRA_VERSION.jar" ]] || die "maven did not produce cassandra-all-$CASSANDRA_VERSION.jar"
touch "$tmp/.complete-$CASSANDRA_VERSION"

rm -rf "$CASSANDRA_LIB_DIR"
mv "$tmp" "$CASSANDRA_LIB_DIR"
trap - EXIT
log "installed $(find "$CASSANDRA_LIB_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$CASSANDRA_LIB_DIR" | cut -f1)) in $CASSANDRA_LIB_DIR in $((SECONDS - started))s"

#!/usr/bin/env bash
# nodetool against the local test Cassandra over its loopback-only JMX port,
# e.g.  infra/cassandra/nodetool.sh status
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/common.sh"

((CASSANDRA_JMX_PORT > 0)) || die "JMX is disabled (URNE_CASSANDRA_JMX_PORT=0)"
[[ -f "$CASSANDRA_LIB_DIR/cassandra-all-$CASSANDRA_VERSION.jar" ]] || die "not installed; run install.sh"
# The tools need the same Java 17 module flags as the server.
mapfile -t jpms < <(grep -E '^(--add-(exports|opens)|-Djdk\.attach)' "$CASSANDRA_SCRIPT_DIR/jvm17.options")
# user.home: nodetool keeps its history in ~/.cassandra; keep that in the state folder.
mkdir -p "$CASSANDRA_LOG_DIR"
JAVA="$(find_java)"
[[ -n "$JAVA" ]] || die "no Java 17 (or 11) found; set URNE_CASSANDRA_JAVA"
exec "$JAVA" -Xmx128m -XX:+PerfDisableSharedMem "${jpms[@]}" \
    -Dcassandra.logdir="$CASSANDRA_LOG_DIR" -Duser.home="$CASSANDRA_STATE_DIR" \
    -Dlogback.configurationFile="file://$CASSANDRA_SCRIPT_DIR/logback-tools.xml" \
    -cp "$CASSANDRA_LIB_DIR/*" org.apache.cassandra.tools.NodeTool \
    -h "$CASSANDRA_HOST" -p "$CASSANDRA_JMX_PORT" "$@"

#!/usr/bin/env bash
# Stop the local test Cassandra started by start.sh. Idempotent.
# SIGTERM lets Cassandra's shutdown hook drain (flush memtables) first;
# SIGKILL only after URNE_CASSANDRA_STOP_TIMEOUT seconds (default 60).
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/common.sh"

take_lock

pid="$(cassandra_pid)"
if [[ -z "$pid" ]]; then
    rm -f "$CASSANDRA_PID_FILE" "$CASSANDRA_STATE_DIR/cassandra.ports"
    log "not running"
    exit 0
fi

log "stopping Cassandra (pid $pid) ..."
started=$SECONDS
kill -TERM "$pid" 2>/dev/null || true
while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS - started >= CASSANDRA_STOP_TIMEOUT)); then
        err "still running after ${CASSANDRA_STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
        break
    fi
    sleep 0.5
done
rm -f "$CASSANDRA_PID_FILE" "$CASSANDRA_STATE_DIR/cassandra.ports"
log "stopped after $((SECONDS - started))s"

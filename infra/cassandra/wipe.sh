#!/usr/bin/env bash
# Stop the local test Cassandra and delete its data, logs and rendered config
# (the downloaded jars in lib/ are kept). Next start.sh boots a fresh node.
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/common.sh"

"$CASSANDRA_SCRIPT_DIR/stop.sh"
take_lock
rm -rf "$CASSANDRA_DATA_DIR" "$CASSANDRA_LOG_DIR" "$CASSANDRA_CONF_DIR"
log "wiped data, logs and config under $CASSANDRA_STATE_DIR"

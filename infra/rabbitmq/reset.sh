#!/usr/bin/env bash
# Wipe all broker state (queues, exchanges, bindings, users other than the
# default guest, vhosts other than /) for a clean test run. The node stays up.
# Starts the node first if needed.
set -euo pipefail

# shellcheck source=infra/rabbitmq/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

require_root

if ! rmq_node_up; then
    "$RMQ_DIR/start.sh"
fi

node="$(rmq_node_name)"
log "resetting node $node (stop_app; reset; start_app)"
rabbitmqctl -q stop_app
rabbitmqctl -q reset
rabbitmqctl -q start_app
rabbitmqctl -q await_startup --timeout 60
log "node $node reset and running"

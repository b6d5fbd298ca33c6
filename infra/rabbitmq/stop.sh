#!/usr/bin/env bash
# Stop the local RabbitMQ node (Erlang VM included). OK if it is not running.
set -euo pipefail

# shellcheck source=infra/rabbitmq/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

require_root

if ! rmq_installed; then
    log "rabbitmq-server not installed; nothing to stop"
    exit 0
fi

node="$(rmq_node_name)"
if ! rmq_node_up; then
    log "node $node not running; nothing to stop"
    exit 0
fi

log "stopping node $node"
# `shutdown` = `stop` that also waits for the OS process to exit, so a
# following start.sh cannot race the old VM for the node name.
if ! rabbitmqctl -q shutdown; then
    warn "rabbitmqctl shutdown failed; trying rabbitmqctl stop"
    rabbitmqctl -q stop || true
fi

for _ in $(seq 1 30); do
    rmq_node_up || { log "node $node stopped"; exit 0; }
    sleep 1
done
die "node $node still reachable 30s after stop"

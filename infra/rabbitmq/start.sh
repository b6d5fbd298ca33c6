#!/usr/bin/env bash
# Ensure a local RabbitMQ node (loopback only, plugins enabled) is running and
# ready. Exit 0 when ready, 1 (with the log tail) when it is not.
set -euo pipefail

# shellcheck source=infra/rabbitmq/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

require_root

TIMEOUT="${RABBITMQ_START_TIMEOUT:-90}"
DETACHED_OUT="$RMQ_LOG_DIR/urne-detached.out"

# Serialise concurrent start.sh runs (e.g. two test jobs). Run the work under
# `flock -o`: the lock is then held by the flock process only, and NOT
# inherited by the detached Erlang VM or epmd (a plain `exec 9>lock; flock 9`
# would leak fd 9 into them and keep the lock held for the node's lifetime).
if [ -z "${URNE_RMQ_START_LOCKED:-}" ]; then
    mkdir -p "$(dirname "$RMQ_LOCK_FILE")"
    rc=0
    URNE_RMQ_START_LOCKED=1 flock -E 75 -o -w $((TIMEOUT + 120)) "$RMQ_LOCK_FILE" \
        "$RMQ_DIR/start.sh" "$@" || rc=$?
    [ "$rc" -ne 75 ] || die "timed out waiting for $RMQ_LOCK_FILE (another start.sh running?)"
    exit "$rc"
fi
unset URNE_RMQ_START_LOCKED

"$RMQ_DIR/install.sh"

# A local certificate authority and a server certificate for the TLS listener, made once.
make_tls_certificates() {
    [ -s "$RMQ_TLS_DIR/server.pem" ] && return 0
    log "making the TLS listener's certificates in $RMQ_TLS_DIR"
    mkdir -p "$RMQ_TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=urne local CA" \
        -keyout "$RMQ_TLS_DIR/ca.key" -out "$RMQ_TLS_DIR/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$RMQ_TLS_DIR/server.key" -out "$RMQ_TLS_DIR/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$RMQ_TLS_DIR/san.ext"
    openssl x509 -req -in "$RMQ_TLS_DIR/server.csr" -CA "$RMQ_TLS_DIR/ca.pem" \
        -CAkey "$RMQ_TLS_DIR/ca.key" -CAcreateserial -days 3650 -extfile "$RMQ_TLS_DIR/san.ext" \
        -out "$RMQ_TLS_DIR/server.pem" 2>/dev/null
    chown -R rabbitmq:rabbitmq "$RMQ_TLS_DIR"
    chmod 0600 "$RMQ_TLS_DIR/ca.key" "$RMQ_TLS_DIR/server.key"
    chmod 0644 "$RMQ_TLS_DIR/ca.pem" "$RMQ_TLS_DIR/server.pem"
    chmod 0755 "$RMQ_TLS_DIR"
}

if [ "${RABBITMQ_SKIP_LOOPBACK:-0}" != 1 ]; then
    make_tls_certificates
    install -m 0644 -o rabbitmq -g rabbitmq "$RMQ_CONF_SRC" "$RMQ_CONF_DST"
    # TLS beside plain AMQP, on loopback too (urne's TLS setting is tested against it).
    cat >>"$RMQ_CONF_DST" <<EOF

listeners.ssl.default = 127.0.0.1:$RMQ_TLS_PORT
ssl_options.cacertfile = $RMQ_TLS_DIR/ca.pem
ssl_options.certfile = $RMQ_TLS_DIR/server.pem
ssl_options.keyfile = $RMQ_TLS_DIR/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
EOF
    export RABBITMQ_CONFIG_FILE="$RMQ_CONF_DST"
    # Inter-node/CLI distribution port (25672) on loopback too.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="${RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS:-} -kernel inet_dist_use_interface {127,0,0,1}"
fi

ensure_plugins_active() {
    if ! rabbitmq-plugins -q is_enabled "${RMQ_PLUGINS[@]}" >/dev/null 2>&1; then
        log "running node lacks some plugins; enabling online: ${RMQ_PLUGINS[*]}"
        rabbitmq-plugins enable "${RMQ_PLUGINS[@]}"
    fi
}

node="$(rmq_node_name)"

if rmq_node_up; then
    if rmq_app_running; then
        ensure_plugins_active
        log "node $node already running and healthy"
        exit 0
    fi
    log "node $node is up but the rabbit app is not running; rabbitmqctl start_app"
    rabbitmqctl -q start_app || warn "start_app failed (node may be booting already); waiting"
else
    log "starting node $node (rabbitmq-server -detached${RABBITMQ_CONFIG_FILE:+, config $RABBITMQ_CONFIG_FILE})"
    : >"$DETACHED_OUT"
    # Debian's wrapper su's to the rabbitmq user (environment preserved) and
    # cds to /var/lib/rabbitmq; -detached daemonises the Erlang VM.
    rabbitmq-server -detached >>"$DETACHED_OUT" 2>&1 \
        || { rmq_print_log_tail 60; die "rabbitmq-server -detached failed"; }
fi

start_ts=$(date +%s)
deadline=$((start_ts + TIMEOUT))
seen_up=0
while :; do
    if rmq_app_running; then
        break
    fi
    now=$(date +%s)
    if rmq_node_up; then
        seen_up=1
    elif [ "$seen_up" = 1 ] || [ $((now - start_ts)) -ge 20 ]; then
        # Node was reachable and vanished, or never came up at all.
        if ! pgrep -u rabbitmq -f 'beam.smp.* -s rabbit boot' >/dev/null 2>&1; then
            rmq_print_log_tail 60
            die "node $node is not running (Erlang VM exited during boot)"
        fi
    fi
    if [ "$now" -ge "$deadline" ]; then
        rmq_print_log_tail 60
        die "node $node not ready after ${TIMEOUT}s"
    fi
    sleep 1
done

ensure_plugins_active
log "node $node ready after $(( $(date +%s) - start_ts ))s (AMQP 127.0.0.1:5672, management http://127.0.0.1:15672, metrics http://127.0.0.1:15692/metrics)"

# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts
# Shared helpers for infra/rabbitmq/*.sh — sourced, not executed.
#
# Environment knobs (all optional):
#   RABBITMQ_START_TIMEOUT   seconds start.sh waits for the node (default 90)
#   RABBITMQ_SKIP_LOOPBACK=1 do not apply the loopback-only rabbitmq.conf
#                            (node then uses /etc/rabbitmq defaults: all interfaces)

# rabbitmqctl & co. live in /usr/sbin, which a non-login CI shell may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin:/sbin" ;; esac

RMQ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Plugins the project needs; enabled offline by install.sh.
RMQ_PLUGINS=(rabbitmq_consistent_hash_exchange rabbitmq_prometheus rabbitmq_management)

RMQ_ENABLED_PLUGINS_FILE=/etc/rabbitmq/enabled_plugins
RMQ_LOG_DIR=/var/log/rabbitmq
RMQ_LOCK_FILE=/run/lock/urne-rabbitmq.lock

# The server runs as the `rabbitmq` user (Debian's wrapper drops privileges),
# which may not be able to read a checkout living under a private directory,
# so the repo's config is copied to a world-readable path and the server is
# pointed at the copy with RABBITMQ_CONFIG_FILE (the wrappers keep the env).
RMQ_CONF_SRC="$RMQ_DIR/rabbitmq.conf"
RMQ_CONF_DST=/etc/rabbitmq/urne-loopback.conf
# The TLS listener's certificates (made by start.sh): a local authority, whose
# certificate clients trust (URNE_AMQP_URL=amqps://...:5671/?cafile=$RMQ_TLS_DIR/ca.pem),
# and the server's, for localhost and 127.0.0.1.
RMQ_TLS_DIR=/etc/rabbitmq/urne-tls
RMQ_TLS_PORT=5671

# epmd (started on demand by whichever Erlang VM needs it first — server or
# CLI) listens on every interface unless told otherwise.
export ERL_EPMD_ADDRESS="${ERL_EPMD_ADDRESS:-127.0.0.1}"

log() { printf '[rabbitmq] %s\n' "$*"; }
warn() { printf '[rabbitmq] WARNING: %s\n' "$*" >&2; }
die() { printf '[rabbitmq] ERROR: %s\n' "$*" >&2; exit 1; }

# The default node name is rabbit@<short hostname>; Erlang distribution needs
# that name to resolve. If it does not (odd container/VM hostnames), fall back
# to rabbit@localhost. Every script sources this file, so they all agree.
if [ -z "${RABBITMQ_NODENAME:-}" ] && ! getent hosts "$(hostname -s)" >/dev/null 2>&1; then
    warn "hostname '$(hostname -s)' does not resolve; using RABBITMQ_NODENAME=rabbit@localhost"
    export RABBITMQ_NODENAME=rabbit@localhost
fi

require_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (Debian's rabbitmq wrappers only work for root or the rabbitmq user)"
}

rmq_installed() {
    dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null | grep -q 'install ok installed' \
        && command -v rabbitmqctl >/dev/null 2>&1
}

# Node OS process up, registered with epmd, CLI can authenticate.
rmq_node_up() { rabbitmq-diagnostics -q ping >/dev/null 2>&1; }

# The `rabbit` application (and therefore listeners) is running.
rmq_app_running() { rabbitmq-diagnostics -q check_running >/dev/null 2>&1; }

rmq_node_name() {
    # rabbit@<short hostname> unless RABBITMQ_NODENAME overrides it.
    printf '%s' "${RABBITMQ_NODENAME:-rabbit@$(hostname -s)}"
}

rmq_print_log_tail() {
    local n="${1:-60}" f node
    node="$(rmq_node_name)"
    for f in "$RMQ_LOG_DIR/startup_err" "$RMQ_LOG_DIR/startup_log" "$RMQ_LOG_DIR/$node.log" \
             "$RMQ_LOG_DIR/urne-detached.out"; do
        if [ -s "$f" ]; then
            printf '[rabbitmq] ---- tail -n %s %s ----\n' "$n" "$f" >&2
            tail -n "$n" "$f" >&2 || true
        fi
    done
}

#!/usr/bin/env bash
# Install Debian's rabbitmq-server (if missing) without letting the package
# start the service, then enable the plugins urne needs (offline).
# Idempotent: a second run only checks and exits.
set -euo pipefail

# shellcheck source=infra/rabbitmq/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

require_root

POLICY_RC=/usr/sbin/policy-rc.d
POLICY_BACKUP=""
POLICY_INSTALLED=0

restore_policy_rc() {
    if [ "$POLICY_INSTALLED" = 1 ]; then
        if [ -n "$POLICY_BACKUP" ]; then
            mv -f "$POLICY_BACKUP" "$POLICY_RC"
        else
            rm -f "$POLICY_RC"
        fi
        POLICY_INSTALLED=0
    fi
}

install_package() {
    log "rabbitmq-server not installed; installing from apt"
    # The package's postinst runs `invoke-rc.d rabbitmq-server start || exit 1`.
    # Without systemd that runs the SysV script, and a failed start leaves the
    # package half-configured. A policy-rc.d that exits 101 makes invoke-rc.d
    # skip the start (exit 0); we start the node ourselves in start.sh.
    if [ -e "$POLICY_RC" ]; then
        POLICY_BACKUP="$(mktemp /usr/sbin/policy-rc.d.urne-backup.XXXXXX)"
        cp -p "$POLICY_RC" "$POLICY_BACKUP"
    fi
    trap restore_policy_rc EXIT
    POLICY_INSTALLED=1
    printf '#!/bin/sh\n# temporary, written by urne infra/rabbitmq/install.sh\nexit 101\n' >"$POLICY_RC"
    chmod 0755 "$POLICY_RC"

    # Finish any earlier interrupted install (e.g. a failed postinst).
    DEBIAN_FRONTEND=noninteractive dpkg --configure -a
    apt-get update -q
    # openssl: start.sh makes the local TLS listener's certificates with it.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server openssl

    restore_policy_rc
    trap - EXIT
    rmq_installed || die "rabbitmq-server still not installed after apt-get install"
}

plugins_in_file() {
    # enabled_plugins is an Erlang term: [plugin_a,plugin_b].
    local p
    [ -r "$RMQ_ENABLED_PLUGINS_FILE" ] || return 1
    for p in "${RMQ_PLUGINS[@]}"; do
        grep -Eq "(^|[^a-z_])${p}([^a-z_]|$)" "$RMQ_ENABLED_PLUGINS_FILE" || return 1
    done
}

enable_plugins() {
    if plugins_in_file; then
        log "plugins already enabled: ${RMQ_PLUGINS[*]}"
        return 0
    fi
    if rmq_node_up; then
        # --offline would only edit the file; the running node would not
        # load the plugins until restarted. Enable them online instead.
        log "node is running; enabling plugins online: ${RMQ_PLUGINS[*]}"
        rabbitmq-plugins enable "${RMQ_PLUGINS[@]}"
    else
        log "enabling plugins offline: ${RMQ_PLUGINS[*]}"
        rabbitmq-plugins enable --offline "${RMQ_PLUGINS[@]}"
    fi
    chown rabbitmq:rabbitmq "$RMQ_ENABLED_PLUGINS_FILE" 2>/dev/null || true
    plugins_in_file || die "plugins not listed in $RMQ_ENABLED_PLUGINS_FILE after enabling"
}

if rmq_installed; then
    log "rabbitmq-server already installed ($(dpkg-query -W -f='${Version}' rabbitmq-server))"
else
    install_package
    log "installed rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server)"
fi

enable_plugins

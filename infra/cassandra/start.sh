#!/usr/bin/env bash
# Start the local single-node test Cassandra (installing it first if needed)
# and wait until it answers a CQL query on 127.0.0.1:$URNE_CASSANDRA_PORT.
# Idempotent: exits 0 at once when it is already up. See common.sh for the
# environment knobs.
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/common.sh"

"$CASSANDRA_SCRIPT_DIR/install.sh"

take_lock

# --- heap: URNE_CASSANDRA_HEAP (default 768m), never above 1 GiB -------------
heap_mib() {
    local h="${URNE_CASSANDRA_HEAP:-768m}" n
    [[ "$h" =~ ^([0-9]+)([mMgG])$ ]] || die "URNE_CASSANDRA_HEAP must look like 512m or 1g, got '$h'"
    n="${BASH_REMATCH[1]}"
    case "${BASH_REMATCH[2]}" in g|G) n=$((n * 1024)) ;; esac
    if ((n > 1024)); then
        err "URNE_CASSANDRA_HEAP=$h is above the 1g cap; using 1g" >&2
        n=1024
    fi
    ((n >= 256)) || die "URNE_CASSANDRA_HEAP=$h is too small (min 256m)"
    echo "$n"
}

print_logs() {
    local f
    for f in "$CASSANDRA_SYSTEM_LOG" "$CASSANDRA_OUT_LOG"; do
        [[ -s "$f" ]] || continue
        echo "[cassandra] ---- last 50 lines of $f ----" >&2
        tail -n 50 "$f" >&2
    done
}

wait_ready() {
    local pid="$1" started="$2" deadline=$((SECONDS + CASSANDRA_START_TIMEOUT)) version
    log "waiting up to ${CASSANDRA_START_TIMEOUT}s for CQL on $CASSANDRA_HOST:$CASSANDRA_PORT (pid $pid) ..."
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            print_logs
            rm -f "$CASSANDRA_PID_FILE"
            die "Cassandra (pid $pid) exited during startup"
        fi
        if port_open "$CASSANDRA_HOST" "$CASSANDRA_PORT"; then
            if [[ -x "$CASSANDRA_CHECK_PYTHON" ]]; then
                if version="$(cql_ready)"; then
                    log "ready: Cassandra $version on $CASSANDRA_HOST:$CASSANDRA_PORT, pid $pid, after $((SECONDS - started))s"
                    return 0
                fi
            elif grep -qE 'Startup complete|Starting listening for CQL clients' "$CASSANDRA_SYSTEM_LOG" 2>/dev/null; then
                log "ready (port open, log says started; no virtualenv for a CQL check) on $CASSANDRA_HOST:$CASSANDRA_PORT, pid $pid, after $((SECONDS - started))s"
                return 0
            fi
        fi
        if ((SECONDS >= deadline)); then
            print_logs
            err "not ready after ${CASSANDRA_START_TIMEOUT}s; stopping it (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$CASSANDRA_PID_FILE"
            exit 1
        fi
        sleep 1
    done
}

# --- already running? --------------------------------------------------------
pid="$(cassandra_pid)"
ports_file="$CASSANDRA_STATE_DIR/cassandra.ports"
want_ports="$CASSANDRA_PORT $CASSANDRA_STORAGE_PORT $CASSANDRA_JMX_PORT"
if [[ -n "$pid" ]]; then
    have_ports="$(cat "$ports_file" 2>/dev/null || true)"
    if [[ -n "$have_ports" && "$have_ports" != "$want_ports" ]]; then
        die "the Cassandra of $CASSANDRA_STATE_DIR (pid $pid) runs with ports native/storage/jmx = $have_ports, not $want_ports; run stop.sh first (or use another URNE_CASSANDRA_STATE_DIR)"
    fi
    if version="$(cql_ready)"; then
        log "already running: Cassandra $version on $CASSANDRA_HOST:$CASSANDRA_PORT (pid $pid)"
        exit 0
    fi
    log "already starting (pid $pid)"
    wait_ready "$pid" "$SECONDS"
    exit 0
fi
rm -f "$CASSANDRA_PID_FILE"

if port_open "$CASSANDRA_HOST" "$CASSANDRA_PORT"; then
    if version="$(cql_ready)"; then
        log "a Cassandra $version not started by this script already answers on $CASSANDRA_HOST:$CASSANDRA_PORT; using it"
        exit 0
    fi
    die "port $CASSANDRA_HOST:$CASSANDRA_PORT is taken by something that is not Cassandra (set URNE_CASSANDRA_PORT)"
fi
if port_open "$CASSANDRA_HOST" "$CASSANDRA_STORAGE_PORT"; then
    die "storage port $CASSANDRA_HOST:$CASSANDRA_STORAGE_PORT is taken (set URNE_CASSANDRA_STORAGE_PORT)"
fi
if ((CASSANDRA_JMX_PORT > 0)) && port_open "$CASSANDRA_HOST" "$CASSANDRA_JMX_PORT"; then
    die "JMX port $CASSANDRA_HOST:$CASSANDRA_JMX_PORT is taken (set URNE_CASSANDRA_JMX_PORT, or 0 to disable JMX)"
fi

JAVA="$(find_java)"
[[ -n "$JAVA" ]] || die "no Java 17 (or 11) found; install openjdk-17-jre-headless or set URNE_CASSANDRA_JAVA"
HEAP_MIB="$(heap_mib)"
XMS_MIB=$((HEAP_MIB < 256 ? HEAP_MIB : 256))
jamm_jar="$(compgen -G "$CASSANDRA_LIB_DIR/jamm-*.jar" | head -n1)"
[[ -n "$jamm_jar" ]] || die "no jamm jar in $CASSANDRA_LIB_DIR (re-run install.sh)"

# --- the TLS key and certificate of the CQL port, made once -------------------
# With the JDK's keytool, which every Cassandra host has: a self-signed certificate for
# the names clients connect with, which tests trust as their authority (tls/node.pem).
make_tls_material() {
    [[ -s "$CASSANDRA_TLS_DIR/node.p12" && -s "$CASSANDRA_TLS_DIR/node.pem" ]] && return 0
    local keytool
    keytool="$(dirname "$JAVA")/keytool"
    [[ -x "$keytool" ]] || die "no keytool beside $JAVA (needed for the CQL port's TLS key)"
    log "making the CQL port's TLS key and certificate in $CASSANDRA_TLS_DIR"
    mkdir -p "$CASSANDRA_TLS_DIR"
    chmod 0755 "$CASSANDRA_TLS_DIR"  # node.pem for every client; node.p12 is 0600
    rm -f "$CASSANDRA_TLS_DIR/node.p12" "$CASSANDRA_TLS_DIR/node.pem"
    "$keytool" -genkeypair -alias node -keyalg EC -groupname secp256r1 -validity 3650 \
        -dname "CN=localhost, O=urne local Cassandra" -ext "SAN=dns:localhost,ip:127.0.0.1" \
        -keystore "$CASSANDRA_TLS_DIR/node.p12" -storetype PKCS12 \
        -storepass "$CASSANDRA_TLS_STOREPASS" >/dev/null 2>&1 \
        || die "keytool could not make the TLS key"
    "$keytool" -exportcert -rfc -alias node -keystore "$CASSANDRA_TLS_DIR/node.p12" \
        -storepass "$CASSANDRA_TLS_STOREPASS" -file "$CASSANDRA_TLS_DIR/node.pem" >/dev/null 2>&1 \
        || die "keytool could not export the TLS certificate"
    chmod 0600 "$CASSANDRA_TLS_DIR/node.p12"
    chmod 0644 "$CASSANDRA_TLS_DIR/node.pem"
}
make_tls_material

# --- render config -----------------------------------------------------------
mkdir -p "$CASSANDRA_CONF_DIR" "$CASSANDRA_LOG_DIR" \
    "$CASSANDRA_DATA_DIR"/{data,commitlog,saved_caches,hints,cdc_raw,triggers}
sed -e "s|@STATE_DIR@|$CASSANDRA_STATE_DIR|g" \
    -e "s|@TLS_STOREPASS@|$CASSANDRA_TLS_STOREPASS|g" \
    -e "s|@NATIVE_PORT@|$CASSANDRA_PORT|g" \
    -e "s|@STORAGE_PORT@|$CASSANDRA_STORAGE_PORT|g" \
    "$CASSANDRA_SCRIPT_DIR/cassandra.yaml" >"$CASSANDRA_CONF_DIR/cassandra.yaml"

# --- JVM flags: static ones from jvm17.options, then the dynamic ones --------
jvm_opts=()
while IFS= read -r line; do
    line="${line%%#*}"
    line="${line%"${line##*[![:space:]]}"}"
    [[ "$line" == -* ]] && jvm_opts+=("$line")
done <"$CASSANDRA_SCRIPT_DIR/jvm17.options"
jvm_opts+=(
    "-Xms${XMS_MIB}m" "-Xmx${HEAP_MIB}m"
    "-XX:ErrorFile=$CASSANDRA_LOG_DIR/hs_err_%p.log"
    "-javaagent:$jamm_jar"
    "-Dcassandra.config=file://$CASSANDRA_CONF_DIR/cassandra.yaml"
    "-Dlogback.configurationFile=file://$CASSANDRA_SCRIPT_DIR/logback.xml"
    "-Dcassandra.logdir=$CASSANDRA_LOG_DIR"
    "-Dcassandra.storagedir=$CASSANDRA_DATA_DIR"
    "-Dcassandra.triggers_dir=$CASSANDRA_DATA_DIR/triggers"
    # The default superuser at once, not 10 s after startup: readiness logs in with it.
    "-Dcassandra.superuser_setup_delay_ms=0"
)
if ((CASSANDRA_JMX_PORT > 0)); then
    # Local-only JMX (Cassandra binds it to loopback) so nodetool works; the
    # RMI server shares the port instead of opening a random extra one.
    jvm_opts+=("-Dcassandra.jmx.local.port=$CASSANDRA_JMX_PORT"
               "-Dcom.sun.management.jmxremote.rmi.port=$CASSANDRA_JMX_PORT")
fi
if [[ -n "${URNE_CASSANDRA_JVM_OPTS:-}" ]]; then
    read -r -a extra <<<"$URNE_CASSANDRA_JVM_OPTS"
    jvm_opts+=("${extra[@]}")
fi

# --- launch ------------------------------------------------------------------
log "starting Cassandra $CASSANDRA_VERSION ($JAVA, Java $(java_major "$JAVA"), heap ${XMS_MIB}m..${HEAP_MIB}m, CQL $CASSANDRA_HOST:$CASSANDRA_PORT, storage $CASSANDRA_STORAGE_PORT, state $CASSANDRA_STATE_DIR)"
{
    echo
    echo "==== $(date -Is) start: $JAVA ${jvm_opts[*]} -cp $CASSANDRA_LIB_DIR/* org.apache.cassandra.service.CassandraDaemon"
} >>"$CASSANDRA_OUT_LOG"
started=$SECONDS
cd "$CASSANDRA_STATE_DIR"
# fd 9 is the state lock: don't let the daemon inherit (and keep) it.
# glibc: few malloc arenas (as Cassandra's cassandra-env.sh does) keeps native RSS down.
MALLOC_ARENA_MAX=4 nohup "$JAVA" "${jvm_opts[@]}" -cp "$CASSANDRA_LIB_DIR/*" org.apache.cassandra.service.CassandraDaemon \
    </dev/null >>"$CASSANDRA_OUT_LOG" 2>&1 9>&- &
pid=$!
echo "$pid" >"$CASSANDRA_PID_FILE"
echo "$want_ports" >"$ports_file"

wait_ready "$pid" "$started"

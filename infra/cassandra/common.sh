# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared settings for the local test Cassandra scripts. Sourced, not run.
#
# Environment knobs (all optional):
#   URNE_CASSANDRA_PORT           CQL native port                    (9042)
#   URNE_CASSANDRA_STORAGE_PORT   inter-node storage port            (7000)
#   URNE_CASSANDRA_JMX_PORT       local JMX port on 127.0.0.1, 0=off (7199)
#   URNE_CASSANDRA_HEAP           max heap, e.g. 512m, 768m, 1g; capped at 1g (768m)
#   URNE_CASSANDRA_START_TIMEOUT  seconds start.sh waits for CQL     (180)
#   URNE_CASSANDRA_STOP_TIMEOUT   seconds stop.sh waits before KILL  (60)
#   URNE_CASSANDRA_STATE_DIR      data/logs/pid/rendered conf        (${XDG_STATE_HOME:-~/.local/state}/urne/cassandra)
#   URNE_CASSANDRA_LIB_DIR        jars fetched by install.sh         (<state dir>/lib)
#   URNE_CASSANDRA_JAVA           java binary (else $JAVA_HOME/bin/java, else a Java 17 found on PATH or in /usr/lib/jvm)
#   URNE_CASSANDRA_JVM_OPTS       extra JVM flags, appended last

CASSANDRA_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"

# Outside the checkout: a test run leaves the working tree as it found it.
CASSANDRA_STATE_DIR="${URNE_CASSANDRA_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/urne/cassandra}"
CASSANDRA_LIB_DIR="${URNE_CASSANDRA_LIB_DIR:-$CASSANDRA_STATE_DIR/lib}"
CASSANDRA_DATA_DIR="$CASSANDRA_STATE_DIR/data"
CASSANDRA_LOG_DIR="$CASSANDRA_STATE_DIR/logs"
CASSANDRA_CONF_DIR="$CASSANDRA_STATE_DIR/conf"
# The CQL port's TLS key (node.p12) and certificate (node.pem, what clients trust).
CASSANDRA_TLS_DIR="$CASSANDRA_STATE_DIR/tls"
# Guards a key that never leaves this machine's test server (Java wants a password).
CASSANDRA_TLS_STOREPASS=urne-local-tls
CASSANDRA_PID_FILE="$CASSANDRA_STATE_DIR/cassandra.pid"
CASSANDRA_LOCK_FILE="$CASSANDRA_STATE_DIR/.lock"
CASSANDRA_OUT_LOG="$CASSANDRA_LOG_DIR/stdout.log"
CASSANDRA_SYSTEM_LOG="$CASSANDRA_LOG_DIR/system.log"

CASSANDRA_HOST=127.0.0.1
CASSANDRA_PORT="${URNE_CASSANDRA_PORT:-9042}"
CASSANDRA_STORAGE_PORT="${URNE_CASSANDRA_STORAGE_PORT:-7000}"
CASSANDRA_JMX_PORT="${URNE_CASSANDRA_JMX_PORT:-7199}"
CASSANDRA_START_TIMEOUT="${URNE_CASSANDRA_START_TIMEOUT:-180}"
CASSANDRA_STOP_TIMEOUT="${URNE_CASSANDRA_STOP_TIMEOUT:-60}"

# Pinned in pom.xml; read from there so there is one place to bump it.
CASSANDRA_VERSION="$(sed -n 's:.*<cassandra.version>\(.*\)</cassandra.version>.*:\1:p' "$CASSANDRA_SCRIPT_DIR/pom.xml" | head -n1)"

log() { echo "[cassandra] $*"; }
err() { echo "[cassandra] ERROR: $*" >&2; }
die() { err "$*"; exit 1; }

for _v in CASSANDRA_PORT CASSANDRA_STORAGE_PORT CASSANDRA_JMX_PORT CASSANDRA_START_TIMEOUT CASSANDRA_STOP_TIMEOUT; do
    [[ "${!_v}" =~ ^[0-9]+$ ]] || die "$_v must be a number, got '${!_v}'"
done
unset _v
[[ -n "$CASSANDRA_VERSION" ]] || die "could not read <cassandra.version> from $CASSANDRA_SCRIPT_DIR/pom.xml"

# Pid of our running Cassandra, or nothing. Guards against a stale pid file
# whose pid got reused by an unrelated process.
cassandra_pid() {
    local pid
    [[ -f "$CASSANDRA_PID_FILE" ]] || return 0
    pid="$(cat "$CASSANDRA_PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'org.apache.cassandra.service.CassandraDaemon'; then
        echo "$pid"
    fi
}

# True when something accepts TCP connections on host:port.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# The project's virtualenv, whose cassandra-driver makes the readiness query.
CASSANDRA_CHECK_PYTHON="${URNE_CASSANDRA_CHECK_PYTHON:-$CASSANDRA_SCRIPT_DIR/../../.venv/bin/python}"

# True when the node answers a real CQL query; prints the release version.
cql_ready() {
    "$CASSANDRA_CHECK_PYTHON" - "$CASSANDRA_HOST" "$CASSANDRA_PORT" 2>/dev/null <<'PY'
import os, sys
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
# Ready means: the superuser can log in (urne's migrations and roles need it).
login = PlainTextAuthProvider(os.environ.get("URNE_CASSANDRA_USERNAME", "cassandra"),
                              os.environ.get("URNE_CASSANDRA_PASSWORD", "cassandra"))
cluster = Cluster([sys.argv[1]], port=int(sys.argv[2]), connect_timeout=5, auth_provider=login)
try:
    print(cluster.connect().execute("SELECT release_version FROM system.local", timeout=5).one()[0])
finally:
    cluster.shutdown()
PY
}

# Pick a Java: Cassandra 5.0 runs on 11 or 17; jvm17.options targets 17.
java_major() {
    local v
    v="$("$1" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
    v="${v#1.}"
    echo "${v%%[.+-]*}"
}
find_java() {
    local c
    if [[ -n "${URNE_CASSANDRA_JAVA:-}" ]]; then echo "$URNE_CASSANDRA_JAVA"; return; fi
    for c in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java || true)" /usr/lib/jvm/*17*/bin/java; do
        if [[ -n "$c" && -x "$c" && "$(java_major "$c")" == 17 ]]; then echo "$c"; return; fi
    done
    for c in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java || true)" /usr/lib/jvm/*11*/bin/java; do
        if [[ -n "$c" && -x "$c" && "$(java_major "$c")" == 11 ]]; then echo "$c"; return; fi
    done
}

# Exclusive lock on the state folder so concurrent start/stop calls don't race.
take_lock() {
    mkdir -p "$CASSANDRA_STATE_DIR"
    exec 9>"$CASSANDRA_LOCK_FILE"
    if ! flock -w 300 9; then
        die "another start/stop holds $CASSANDRA_LOCK_FILE"
    fi
}

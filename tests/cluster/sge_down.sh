#!/usr/bin/env bash
# Stop the single-host test Grid Engine started by sge_up.sh: sge_execd, then sge_qmaster,
# each by its own pid file. Idempotent; the private root, its packages and the cell are kept
# (sge_up.sh starts them again in about a second).
#
#   bash tests/cluster/sge_down.sh
#
# Environment: SGE_UP_TIMEOUT (seconds per wait, default 60), CLUSTER_TEST_SGE (the root).
set -euo pipefail

T0=$(date +%s%N)
TIMEOUT=${SGE_UP_TIMEOUT:-60}
SPOOL=${CLUSTER_TEST_SGE:-/opt/cluster-test-sge}/default/spool

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # log, die, wait_for, running

[[ $(id -u) == 0 ]] || { echo "sge_down: must run as root" >&2; exit 1; }

# stop PIDFILE NAME: send TERM to the pid in the file and wait (bounded) until it is gone
stop() {
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if ! kill -0 "$pid" 2>/dev/null; then
        log "$name: not running (stale pid file)"; rm -f "$pidfile"; return 0
    fi
    kill "$pid"
    local deadline=$(( $(date +%s) + TIMEOUT ))
    while kill -0 "$pid" 2>/dev/null; do
        if (( $(date +%s) >= deadline )); then
            log "$name (pid $pid) did not stop in ${TIMEOUT}s" >&2; return 1
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
    log "stopped $name"
}

# execd names its spool directory by the host name as it resolves it (here: localhost)
for pidfile in "$SPOOL"/execd/*/execd.pid; do
    [[ -e $pidfile ]] && stop "$pidfile" sge_execd
done
stop "$SPOOL/qmaster/qmaster.pid" sge_qmaster
log "Grid Engine is down"

#!/usr/bin/env bash
# Stop the test sshd started by tests/cluster/sshd_up.sh. Idempotent; keys, user and
# configuration stay, so the next sshd_up.sh is quick.
set -euo pipefail

STATE=${CLUSTER_TEST_STATE:-/var/lib/cluster-test}
PIDFILE=$STATE/sshd/sshd.pid

if [[ -s $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    pid=$(cat "$PIDFILE")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    echo "[sshd_down] stopped the test sshd (pid $pid)"
else
    echo "[sshd_down] the test sshd is not running"
fi
rm -f "$PIDFILE"

#!/usr/bin/env bash
# Stop the single-node test Slurm started by slurm_up.sh: slurmd, slurmctld, slurmdbd,
# mariadbd and munged, each by its own pid file. Idempotent; packages and data are kept.
set -euo pipefail

TIMEOUT=${SLURM_UP_TIMEOUT:-60}
RUN_DIR=/run/slurm

[[ $(id -u) == 0 ]] || { echo "slurm_down: must run as root" >&2; exit 1; }

# stop PIDFILE NAME: send TERM to the pid in the file and wait (bounded) until it is gone
stop() {
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || { echo "[slurm_down] $name: not running"; return 0; }
    pid=$(cat "$pidfile")
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "[slurm_down] $name: not running (stale pid file)"; rm -f "$pidfile"; return 0
    fi
    kill "$pid"
    local deadline=$(( $(date +%s) + TIMEOUT ))
    while kill -0 "$pid" 2>/dev/null; do
        if (( $(date +%s) >= deadline )); then
            echo "[slurm_down] $name (pid $pid) did not stop in ${TIMEOUT}s" >&2; return 1
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
    echo "[slurm_down] stopped $name"
}

stop "$RUN_DIR/slurmd.pid" slurmd
stop "$RUN_DIR/slurmctld.pid" slurmctld
stop "$RUN_DIR/slurmdbd.pid" slurmdbd
stop /run/mysqld/mysqld.pid mariadbd
stop /run/munge/munged.pid munged

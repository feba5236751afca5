#!/usr/bin/env bash
# Change a setting of the test Slurm for a while, and put it back.
#
#   bash tests/cluster/slurm_conf.sh get MaxArraySize            # prints 1001
#   bash tests/cluster/slurm_conf.sh set MaxArraySize=50          # until set back
#   bash tests/cluster/slurm_conf.sh with MaxArraySize=50 -- CMD...  # CMD under the low limit,
#                                                                     # then the old value again
#
# The line in /etc/slurm/slurm.conf (written by slurm_up.sh) is replaced atomically and
# slurmctld is restarted: `scontrol reconfigure` alone makes `scontrol show config` report
# the new MaxArraySize, but Slurm 22.05's sbatch check keeps the value slurmctld started
# with (--array=0-60 is still accepted). Jobs survive; others' squeue and
# sbatch block (their clients retry) for the ~3.5 s a restart takes, and then succeed.
# `set` returns once slurmctld answers with the new value (each wait bounded by
# SLURM_CONF_TIMEOUT, default 30 s); setting the value it already has does nothing.
# Only MaxArraySize is accepted. The change is seen by everyone's jobs on this Slurm:
# keep the window short. A lock serialises users of
# this script; `with` holds it while CMD runs, so two tests never overlap their limits.
# If a test dies with the limit low, `bash tests/cluster/slurm_up.sh` restores slurm.conf.
# SLURM_CONF_RESTART=0 only reconfigures (tests/test_slurm_service.py shows it is not enough).
set -euo pipefail

CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
TIMEOUT=${SLURM_CONF_TIMEOUT:-30}
RESTART=${SLURM_CONF_RESTART:-1}
LOCK=/run/slurm/slurm_conf.lock
PIDFILE=/run/slurm/slurmctld.pid
ALLOWED=(MaxArraySize)

die() { echo "slurm_conf: $*" >&2; exit 2; }
usage() { die "usage: $0 get KEY | set KEY=VALUE | with KEY=VALUE -- CMD..."; }

check_key() {
    local key
    for key in "${ALLOWED[@]}"; do [[ $1 == "$key" ]] && return 0; done
    die "setting '$1' is not one this script changes (allowed: ${ALLOWED[*]})"
}

# current KEY: the value slurmctld runs with
current() { scontrol show config | sed -n "s/^$1 *= *//p"; }

# wait_until DESCRIPTION COMMAND...: retry COMMAND until it succeeds, at most TIMEOUT seconds
wait_until() {
    local what=$1; shift
    local deadline=$(( $(date +%s) + TIMEOUT ))
    until "$@" >/dev/null 2>&1; do
        (( $(date +%s) < deadline )) || die "timed out after ${TIMEOUT}s waiting for: $what"
        sleep 0.1
    done
}

# restart_slurmctld: stop the running slurmctld, start it again (its state file keeps every
# job; running jobs go on), and let the slurmds re-read slurm.conf too
restart_slurmctld() {
    local pid; pid=$(cat "$PIDFILE")
    kill "$pid"
    wait_until "slurmctld (pid $pid) to stop" bash -c "! kill -0 $pid"
    slurmctld -i
    wait_until "slurmctld (scontrol ping)" bash -c 'scontrol ping | grep -q "is UP"'
    scontrol reconfigure
}

# apply KEY VALUE: rewrite the line, make slurmctld use it, wait until it reports VALUE
apply() {
    local key=$1 value=$2
    [[ $value =~ ^[0-9]+$ ]] || die "$key needs a whole number, got '$value'"
    [[ "$(current "$key")" == "$value" ]] && return 0
    grep -q "^$key=" "$CONF" || die "$CONF has no $key= line (run tests/cluster/slurm_up.sh)"
    local tmp; tmp=$(mktemp "$CONF.XXXXXX")
    sed "s/^$key=.*/$key=$value/" "$CONF" > "$tmp"
    chmod 644 "$tmp"; mv -f "$tmp" "$CONF"
    if [[ $RESTART == 0 ]]; then scontrol reconfigure; else restart_slurmctld; fi
    [[ "$(current "$key")" == "$value" ]] || die "slurmctld reports $key=$(current "$key"), not $value"
}

(( $# >= 2 )) || usage
action=$1 arg=$2; shift 2
key=${arg%%=*} value=${arg#*=}
check_key "$key"
case $action in
    get) current "$key";;
    set)
        [[ $arg == *=* ]] || usage
        exec 9>"$LOCK"; flock -w "$TIMEOUT" 9 || die "lock $LOCK busy for ${TIMEOUT}s"
        apply "$key" "$value";;
    with)
        [[ $arg == *=* && ${1:-} == -- ]] || usage
        shift
        (( $# )) || usage
        exec 9>"$LOCK"; flock -w "$TIMEOUT" 9 || die "lock $LOCK busy for ${TIMEOUT}s"
        old=$(current "$key")
        trap 'apply "$key" "$old"' EXIT
        apply "$key" "$value"
        "$@";;
    *) usage;;
esac

# Helpers the bring-up scripts of tests/cluster share; sourced, after the script has set
# T0 (its start, in ns from `date +%s%N`) and TIMEOUT (seconds per readiness wait).
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCRIPT=$(basename "$0" .sh)

# log MESSAGE...: one line, with the script's name and the time since it started
log() {
    local ms=$(( ($(date +%s%N) - T0) / 1000000 ))
    printf '[%s %3d.%03ds] %s\n' "$SCRIPT" $(( ms / 1000 )) $(( ms % 1000 )) "$*"
}
die() { log "ERROR: $*"; exit 1; }

# wait_for DESCRIPTION COMMAND...: retry COMMAND until it succeeds or TIMEOUT passes
wait_for() {
    local what=$1; shift
    local deadline=$(( $(date +%s) + TIMEOUT ))
    until "$@" >/dev/null 2>&1; do
        if (( $(date +%s) >= deadline )); then
            log "timed out after ${TIMEOUT}s waiting for: $what"
            return 1
        fi
        sleep 0.2
    done
    log "ready: $what"
}

# running PIDFILE: the daemon whose pid the file names is alive
running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

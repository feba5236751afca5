#!/usr/bin/env bash
# Give the ssh test user (clustertest, made by sshd_up.sh) what remote function jobs need:
# a Python with the same dill as the project's virtualenv, and one without dill for the
# "remote python without dill" test; and the same Python and a job directory to the Grid
# Engine user (clustersge, made by sshd_up.sh when sge_up.sh has run), checked over SSH:
# it may submit to the test Grid Engine. Idempotent; run after sshd_up.sh, as root.
#
#   bash tests/cluster/remote_up.sh
#
# Writes $STATE/remote.env (default /var/lib/cluster-test/remote.env):
#   CLUSTER_TEST_REMOTE_PYTHON         python with dill, runnable by clustertest
#   CLUSTER_TEST_REMOTE_PYTHON_NODILL  python without dill
#   CLUSTER_TEST_REMOTE_WORKDIR        the test user's directory for remote job files
#   CLUSTER_TEST_SGE_REMOTE_PYTHON     python with dill, runnable by clustersge
#   CLUSTER_TEST_SGE_REMOTE_WORKDIR    clustersge's directory for remote job files
# Needs /usr/bin/python3 (Debian's python3) and PyPI for `pip install dill`.
set -euo pipefail
cd "$(dirname "$0")/../.."

STATE=${CLUSTER_TEST_STATE:-/var/lib/cluster-test}
TEST_USER=clustertest
ROOT=/opt/cluster-test
WITH=$ROOT/venv
WITHOUT=$ROOT/venv-nodill
VENV_PY=${VENV_PY:-.venv/bin/python}

log() { echo "[remote_up] $*"; }
die() { echo "[remote_up] ERROR: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root"
id "$TEST_USER" >/dev/null 2>&1 || die "no user $TEST_USER: run tests/cluster/sshd_up.sh first"
if [[ ! -x /usr/bin/python3 ]]; then
    source "$(dirname "$0")/apt_install.sh"
    apt_install python3
fi
[[ -x $VENV_PY ]] || die "$VENV_PY is missing: run scripts/install.sh first"

DILL=$("$VENV_PY" -c 'import dill; print(dill.__version__)')
install -d -m 755 "$ROOT"
for venv in "$WITH" "$WITHOUT"; do
    [[ -x $venv/bin/python ]] || /usr/bin/python3 -m venv --without-pip "$venv"
done
SITE=$("$WITH/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [[ $("$WITH/bin/python" -c 'import dill; print(dill.__version__)' 2>/dev/null || true) != "$DILL" ]]; then
    log "installing dill $DILL for $WITH/bin/python"
    "$VENV_PY" -m pip install -q --no-deps --upgrade --target "$SITE" "dill==$DILL"
fi
chmod -R a+rX "$ROOT"

# sge_user_up: $SGE_USER's job directory; over SSH it imports dill and may submit (qsub -w v
# verifies a job without submitting it: a submit host, no user list keeps it out)
sge_user_up() {
    local key known port home check
    key=$(sed -n 's/^CLUSTER_TEST_SGE_SSH_KEY=//p' "$STATE/sshd.env")
    known=$(sed -n 's/^CLUSTER_TEST_SSH_KNOWN_HOSTS=//p' "$STATE/sshd.env")
    port=$(sed -n 's/^CLUSTER_TEST_SSH_PORT=//p' "$STATE/sshd.env")
    home=$(getent passwd "$SGE_USER" | cut -d: -f6)
    SGE_WORKDIR=$home/cluster-tests
    install -d -m 700 -o "$SGE_USER" -g "$(id -gn "$SGE_USER")" "$SGE_WORKDIR"
    check=$(ssh -q -i "$key" -p "$port" -o BatchMode=yes -o ConnectTimeout=5 \
                -o UserKnownHostsFile="$known" -o StrictHostKeyChecking=yes \
                "$SGE_USER@127.0.0.1" "$WITH/bin/python -c 'import dill' && qsub -w v -b y /bin/true" \
                </dev/null 2>&1) || die "$SGE_USER cannot run function jobs on Grid Engine: $check"
    [[ $check == *"found suitable queue"* ]] || die "qsub -w v as $SGE_USER: $check"
}

HOME_DIR=$(getent passwd "$TEST_USER" | cut -d: -f6)
WORKDIR=$HOME_DIR/cluster-tests
install -d -m 700 -o "$TEST_USER" -g "$(id -gn "$TEST_USER")" "$WORKDIR"

su -s /bin/sh "$TEST_USER" -c "$WITH/bin/python -c 'import dill'" \
    || die "$TEST_USER cannot import dill with $WITH/bin/python"
if su -s /bin/sh "$TEST_USER" -c "$WITHOUT/bin/python -c 'import dill'" 2>/dev/null; then
    die "$WITHOUT/bin/python imports dill; it must not"
fi

# the Grid Engine user: sshd_up.sh names it (and its key) when sge_up.sh had run
SGE_USER=$(sed -n 's/^CLUSTER_TEST_SGE_SSH_USER=//p' "$STATE/sshd.env" 2>/dev/null || true)
if [[ -n $SGE_USER ]]; then
    sge_user_up
else
    log "no Grid Engine user in $STATE/sshd.env (run sge_up.sh, sshd_up.sh, then this again)"
fi

install -d -m 700 "$STATE"
cat > "$STATE/remote.env" <<EOF
CLUSTER_TEST_REMOTE_PYTHON=$WITH/bin/python
CLUSTER_TEST_REMOTE_PYTHON_NODILL=$WITHOUT/bin/python
CLUSTER_TEST_REMOTE_WORKDIR=$WORKDIR
EOF
if [[ -n $SGE_USER ]]; then
    cat >> "$STATE/remote.env" <<EOF
CLUSTER_TEST_SGE_REMOTE_PYTHON=$WITH/bin/python
CLUSTER_TEST_SGE_REMOTE_WORKDIR=$SGE_WORKDIR
EOF
fi
chmod 644 "$STATE/remote.env"
log "ready: dill $DILL for $TEST_USER${SGE_USER:+ and $SGE_USER} at $WITH/bin/python; settings in $STATE/remote.env"
cat "$STATE/remote.env"

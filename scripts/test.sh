#!/usr/bin/env bash
# Install everything the tests need, start the real services, run the whole suite.
# Needs root: it installs Debian packages and starts Slurm, munge, MariaDB and sshd. Run as
# root it does so directly (a fresh Debian machine has no sudo); as a user, through sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "scripts/test.sh: needs root (it installs packages and starts services);" \
             "sudo is not installed: run it as root" >&2
        exit 1
    fi
    exec sudo bash scripts/test.sh "$@"
fi
bash scripts/install.sh --test
bash scripts/setup_xenon.sh          # java, the xenon-grpc jar, its proto, the gRPC stubs
bash tests/cluster/slurm_up.sh       # munge, mariadb, slurmdbd, slurmctld, slurmd, Torque wrappers
bash tests/cluster/sge_up.sh         # Grid Engine in a private root (its qsub never in /usr/bin)
bash tests/cluster/sshd_up.sh        # an sshd on 127.0.0.1 with the test user clustertest
bash tests/cluster/remote_up.sh      # that user's Pythons (with and without dill) for remote jobs
# Strict: a real component that is missing fails its tests (tests/support.py), never skips.
# pytest exits 5 when it ran no test: that fails this script like any other failure.
export CLUSTER_TEST_STRICT=1
if (( $# )); then
    exec .venv/bin/python -m pytest -ra "$@"
fi
# The whole suite, in two runs at once to keep within 30 minutes: the tests that never
# touch Slurm (the Xenon client and Grid Engine, which has its own daemons) run beside
# the others, which share the one Slurm. Each run must pass; its exit 5 fails too.
BESIDE=(tests/test_xenon_*.py tests/test_sge.py tests/test_sge_service.py)
LOG=$(mktemp /tmp/cluster-tests-beside.XXXXXX)
.venv/bin/python -m pytest -ra --durations=10 -p no:cacheprovider "${BESIDE[@]}" >"$LOG" 2>&1 &
beside=$!
main=0
.venv/bin/python -m pytest -ra --durations=25 ${BESIDE[@]/#/--ignore=} || main=$?
other=0
wait "$beside" || other=$?
echo "=== the tests run beside (${BESIDE[*]}): exit $other ==="
cat "$LOG"
rm -f "$LOG"
echo "=== exit codes: main run $main, beside $other ==="
(( main == 0 && other == 0 ))

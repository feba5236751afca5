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
PYTEST=(.venv/bin/python -m pytest -ra -p no:cacheprovider)
if (( $# )); then
    exec "${PYTEST[@]}" "$@"
fi
# The whole suite within 30 minutes, as four runs that share the one Slurm without
# disturbing each other (pytest markers: pyproject.toml). Each run must pass; its exit 5 fails.
#   apart: the tests that never touch Slurm (the Xenon client, Grid Engine with its own
#          daemons) run from the start, beside everything else;
#   main:  the other tests, but for
#   waits: the long ones that mostly wait (on Slurm's clock, on their jobs), which run
#          in a second lane beside main;
#   alone: those that freeze, restart or reconfigure slurmctld, or preempt through partition
#          high, which run after main and waits, with nothing else on Slurm; and the Xenon
#          SFTP tests, which want a quiet machine (tests/conftest.py).
LOGS=$(mktemp -d /tmp/cluster-tests.XXXXXX)
"${PYTEST[@]}" --durations=10 -m 'apart and not alone' >"$LOGS/apart" 2>&1 &
apart_pid=$!
"${PYTEST[@]}" --durations=5 -m 'waits and not apart and not alone' >"$LOGS/waits" 2>&1 &
waits_pid=$!
main=0 waits=0 alone=0 apart=0
echo "=== main ==="
"${PYTEST[@]}" --durations=25 -m 'not apart and not waits and not alone' || main=$?
wait "$waits_pid" || waits=$?
echo "=== alone (after main and waits) ==="
"${PYTEST[@]}" --durations=10 -m alone || alone=$?
wait "$apart_pid" || apart=$?
for group in waits apart; do
    echo "=== $group (run beside main) ==="
    cat "$LOGS/$group"
done
rm -rf "$LOGS"
echo "=== exit codes: main $main, waits $waits, alone $alone, apart $apart ==="
(( main == 0 && waits == 0 && alone == 0 && apart == 0 ))

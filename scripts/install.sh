#!/usr/bin/env bash
# Install cluster into ./.venv (created if missing). `--test` adds what the test suite needs,
# with the peers the benchmarks measure against (tests/test_benchmark_executor.py runs one).
set -euo pipefail
cd "$(dirname "$0")/.."
# The build also makes xenon_backend's gRPC stubs and fetches the xenon-grpc jar into the
# user data dir (~/.local/share/cluster/jar), so a remote profile needs only java after it.
as_root() {  # root runs it directly (a fresh Debian machine has no sudo); a user through sudo
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "scripts/install.sh: '$*' needs root and sudo is not installed: run it as root" >&2
         return 1
    fi
}
extras=""
[ "${1:-}" = "--test" ] && extras="[test,bench]"
missing=""
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="python3-venv"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"   # the Xenon TLS certificates
if [ -n "$missing" ]; then
    as_root apt-get update -qq
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"

#!/usr/bin/env bash
# Make xenon_backend usable: java, the xenon-grpc jar, its proto and the Python stubs.
#
# Idempotent and quick when everything is there already. For Debian; java comes from
# `default-jre-headless` when there is no `java` (installing needs root). The jar (already
# fetched by the install into the user data dir, ~/.local/share/cluster/jar) is
# otherwise fetched from PyPI (inside the pyxenon==3.0.3 sdist) by `python -m xenon_backend.build`,
# which also extracts protos/xenon.proto and generates xenon_backend/proto/*_pb2*.py.
#
#   bash scripts/setup_xenon.sh              # uses .venv/bin/python if present, else python3
#   PYTHON=/path/to/python bash scripts/setup_xenon.sh
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
log() { echo "[setup_xenon] $*"; }

# --- java ----------------------------------------------------------------------------
if ! command -v java >/dev/null 2>&1 && [[ ! -x ${JAVA_HOME:-/nonexistent}/bin/java ]]; then
    if [[ $(id -u) != 0 ]]; then
        echo "[setup_xenon] ERROR: java is missing; install it as root: apt-get install default-jre-headless" >&2
        exit 1
    fi
    log "installing java (default-jre-headless)"
    mkdir -p /usr/share/man/man1  # the JRE's postinst wants it on slim images
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        default-jre-headless >/dev/null
fi
log "java: $(java -version 2>&1 | head -n 1)"

# --- openssl (for the mutual-TLS certificates) -------------------------------------------
if ! command -v openssl >/dev/null 2>&1; then
    [[ $(id -u) == 0 ]] || { echo "[setup_xenon] ERROR: openssl is missing: apt-get install openssl" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null
fi

# --- grpcio-tools, then the jar, the proto and the stubs ----------------------------------
if ! "$PYTHON" -c 'import grpc_tools' 2>/dev/null; then
    log "installing grpcio-tools"
    "$PYTHON" -m pip install --quiet grpcio-tools
fi
"$PYTHON" -m xenon_backend.build
"$PYTHON" - <<'PY'
from xenon_backend import _stubs
pb2 = _stubs.pb2()
rpcs = sum(len(s.methods) for s in pb2.DESCRIPTOR.services_by_name.values())
print(f'[setup_xenon] stubs import: package {pb2.DESCRIPTOR.package}, '
      f'{len(pb2.DESCRIPTOR.services_by_name)} services, {rpcs} rpcs')
PY

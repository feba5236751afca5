"""Build step of ``xenon_backend``: fetch the xenon-grpc jar, take its proto, generate stubs.

Installing the package (``pip install .``, ``scripts/install.sh``) runs it: setup.py's
``build_py`` generates the stubs, fetching the jar first when it is nowhere to be found.
``python -m xenon_backend.build`` does the same by hand. Every step is skipped when its
output is already there and current, so a second run takes a fraction of a second.

1. The jar: xenon-grpc 3.0.1 travels inside the ``pyxenon==3.0.3`` sdist on PyPI as
   ``lib/xenon-grpc-3.0.1.jar``. ``pip download`` fetches the sdist (so the user's index,
   mirror and proxy settings apply) and only the jar is extracted, into ``jar/`` of the
   user data directory (:func:`user_data_dir`). A warning on stderr names what is
   fetched, from where and to where. Its SHA-256 is checked, then and whenever it is
   found again; ``$XENON_GRPC_JAR`` names a jar of the user's own, used as it is.
   The server (:mod:`xenon_backend.server`) fetches it on first use when it is missing.
2. The proto: ``xenon.proto`` is read from the jar (a zip file; no java needed) into
   ``protos/xenon.proto``.
3. The stubs: ``grpc_tools.protoc`` writes ``xenon_pb2.py`` and ``xenon_pb2_grpc.py``
   into ``xenon_backend/proto/``; the grpc module's ``import xenon_pb2`` is made
   package-relative.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path
from importlib.metadata import version
from typing import List, Optional

# the jar's names are reachable here too (build.find_jar, build.JAR_SHA256 ...)
from .jar import (BUILD_HINT, JAR_ENV, JAR_NAME, JAR_SHA256, PACKAGE_DIR,  # noqa: F401
                  PROJECT_DIR, SDIST_REQUIREMENT, BuildError, JarMissing, check_jar, default_jar_target,
                  ensure_jar, fetch_jar, find_jar, jar_candidates, sha256, user_data_dir)

logger = logging.getLogger(__name__)

STUB_DIR = PACKAGE_DIR / 'proto'
PROTO_NAME = 'xenon.proto'
STAMP_NAME = 'xenon_pb2_stamp.py'  # matches the .gitignore pattern of the stubs


def proto_text(jar: Path) -> bytes:
    """The ``xenon.proto`` carried by the jar."""
    try:
        with zipfile.ZipFile(jar) as archive:
            return archive.read(PROTO_NAME)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise BuildError(f'{jar} is not a xenon-grpc jar holding {PROTO_NAME}: {exc}') from None


def extract_proto(jar: Path, target: Optional[Path] = None) -> Path:
    """Write the jar's proto to ``protos/xenon.proto`` unless it is there already."""
    target = Path(target) if target else PROJECT_DIR / 'protos' / PROTO_NAME
    text = proto_text(jar)
    if target.is_file() and target.read_bytes() == text:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + '.part')
    partial.write_bytes(text)
    os.replace(partial, target)
    return target


def _tools_version() -> str:
    try:
        return version('grpcio-tools')
    except Exception:  # noqa: BLE001 - not installed, or no metadata
        return 'unknown'


def _stamp(proto: Path) -> str:
    digest = hashlib.sha256(proto.read_bytes()).hexdigest()
    return f'STAMP = {digest + " grpcio-tools=" + _tools_version()!r}\n'


def stubs_current(proto: Path, out_dir: Path = STUB_DIR) -> bool:
    """True when the stubs in ``out_dir`` were made from this proto by this grpcio-tools."""
    stamp = out_dir / STAMP_NAME
    return (all((out_dir / name).is_file() for name in ('xenon_pb2.py', 'xenon_pb2_grpc.py'))
            and stamp.is_file() and stamp.read_text() == _stamp(proto))


def generate_stubs(proto: Optional[Path] = None, out_dir: Path = STUB_DIR,
                   force: bool = False) -> Path:
    """Generate ``xenon_pb2.py``/``xenon_pb2_grpc.py`` from ``proto`` into ``out_dir``."""
    proto = Path(proto) if proto else PROJECT_DIR / 'protos' / PROTO_NAME
    if not proto.is_file():
        raise BuildError(f'{proto} is missing: {BUILD_HINT}')
    out_dir = Path(out_dir)
    if not force and stubs_current(proto, out_dir):
        return out_dir
    try:
        from grpc_tools import protoc  # optional: grpcio-tools (only to make the stubs)
    except ImportError:
        raise BuildError('grpcio-tools is needed to generate the stubs: '
                         'pip install grpcio-tools') from None
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='xenon-stubs-') as tmp:
        include = os.path.join(os.path.dirname(protoc.__file__), '_proto')
        code = protoc.main(['grpc_tools.protoc', f'-I{proto.parent}', f'-I{include}',
                            f'--python_out={tmp}', f'--pyi_out={tmp}',
                            f'--grpc_python_out={tmp}', str(proto)])
        if code != 0:
            raise BuildError(f'grpc_tools.protoc failed on {proto} with exit code {code}')
        grpc_module = Path(tmp) / 'xenon_pb2_grpc.py'
        text, count = re.subn(r'^import xenon_pb2 as', 'from . import xenon_pb2 as',
                              grpc_module.read_text(), flags=re.MULTILINE)
        if count != 1:
            raise BuildError('unexpected import line in the generated xenon_pb2_grpc.py')
        grpc_module.write_text(text)
        for name in ('xenon_pb2.py', 'xenon_pb2.pyi', 'xenon_pb2_grpc.py'):
            os.replace(os.path.join(tmp, name), out_dir / name)
    (out_dir / STAMP_NAME).write_text(_stamp(proto))
    logger.info('generated stubs in %s', out_dir)
    return out_dir


def build_package_stubs() -> Path:
    """setup.py's step: stubs from ``protos/xenon.proto``, else from the jar (fetched if need be)."""
    proto = PROJECT_DIR / 'protos' / PROTO_NAME
    if not proto.is_file():
        proto = extract_proto(ensure_jar())
    return generate_stubs(proto)


def build(force: bool = False) -> Path:
    """All three steps; returns the jar's path."""
    jar = ensure_jar()
    proto = extract_proto(jar)
    generate_stubs(proto, force=force)
    return jar


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m xenon_backend.build', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--force', action='store_true', help='regenerate the stubs')
    parser.add_argument('--quiet', '-q', action='store_true')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format='%(message)s')
    try:
        jar = build(force=args.force)
    except BuildError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    if not args.quiet:
        print(f'jar:   {jar}\nproto: {PROJECT_DIR / "protos" / PROTO_NAME}\nstubs: {STUB_DIR}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Build step of ``xenon_backend``: fetch the xenon-grpc jar, take its proto, generate stubs.

Run ``python -m xenon_backend.build`` once after installing (``scripts/setup_xenon.sh``
does it). Every step is skipped when its output is already there and current, so a
second run takes a fraction of a second.

1. The jar: xenon-grpc 3.0.1 travels inside the ``pyxenon==3.0.3`` sdist on PyPI as
   ``lib/xenon-grpc-3.0.1.jar``. ``pip download`` fetches the sdist and only the jar is
   extracted, into ``jar/`` of the project (or the user's data directory when the
   package is installed somewhere read-only). Its SHA-256 is checked.
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
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import List, Optional

logger = logging.getLogger(__name__)

JAR_NAME = 'xenon-grpc-3.0.1.jar'
JAR_SHA256 = '8dbb2eb189ed2eb9bdd017ae05df2281d10cb615fea1ca7fc79f394bb309f629'
SDIST_REQUIREMENT = 'pyxenon==3.0.3'
SDIST_MEMBER = 'pyxenon-3.0.3/lib/' + JAR_NAME
JAR_ENV = 'XENON_GRPC_JAR'

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
STUB_DIR = PACKAGE_DIR / 'proto'
PROTO_NAME = 'xenon.proto'
STAMP_NAME = 'xenon_pb2_stamp.py'  # matches the .gitignore pattern of the stubs
BUILD_HINT = 'run `python -m xenon_backend.build`'


class BuildError(RuntimeError):
    """The jar, the proto or the stubs cannot be produced or found."""


def user_data_dir() -> Path:
    """Per-user data directory of the project (``$XDG_DATA_HOME/cluster``)."""
    base = os.environ.get('XDG_DATA_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'share')
    return Path(base) / 'cluster'


def jar_candidates() -> List[Path]:
    """Places searched for the jar, in order (``$XENON_GRPC_JAR`` first)."""
    places = []
    if os.environ.get(JAR_ENV):
        places.append(Path(os.environ[JAR_ENV]).expanduser())
    places += [PROJECT_DIR / 'jar' / JAR_NAME, PACKAGE_DIR / 'jar' / JAR_NAME,
               user_data_dir() / 'jar' / JAR_NAME]
    return places


def find_jar() -> Path:
    """Path of the xenon-grpc jar; :class:`BuildError` saying what to do when there is none."""
    override = os.environ.get(JAR_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise BuildError(f'{JAR_ENV}={override} does not name a file; unset it or point it '
                             f'at {JAR_NAME}')
        return path
    for path in jar_candidates():
        if path.is_file():
            return path
    raise BuildError(f'the xenon-grpc jar ({JAR_NAME}) is missing: {BUILD_HINT} (it fetches '
                     f'{SDIST_REQUIREMENT} from PyPI), or set {JAR_ENV} to its path')


def default_jar_target() -> Path:
    """Where a fetched jar goes: the project's ``jar/`` if writable, else the user data dir."""
    project_jar_dir = PROJECT_DIR / 'jar'
    if project_jar_dir.is_dir() and os.access(project_jar_dir, os.W_OK):
        return project_jar_dir / JAR_NAME
    return user_data_dir() / 'jar' / JAR_NAME


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def fetch_jar(target: Optional[Path] = None) -> Path:
    """Download the pyxenon sdist with pip and extract only the jar to ``target``."""
    from cluster.run import cmd  # the project's one way to run a program

    target = Path(target) if target else default_jar_target()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='xenon-jar-') as tmp:
        logger.info('downloading %s from PyPI', SDIST_REQUIREMENT)
        code, out, err = cmd([sys.executable, '-m', 'pip', 'download', '--no-deps',
                              '--no-binary', ':all:', SDIST_REQUIREMENT, '-d', tmp,
                              '--disable-pip-version-check', '--quiet'], timeout=900)
        sdists = sorted(Path(tmp).glob('pyxenon-*.tar.gz'))
        if code != 0 or not sdists:
            raise BuildError(f'could not download {SDIST_REQUIREMENT} with pip '
                             f'(exit code {code}): {(err or out).strip()[-2000:]}')
        partial = target.with_name(target.name + '.part')
        with tarfile.open(sdists[0], 'r:gz') as sdist:
            try:
                member = sdist.getmember(SDIST_MEMBER)
            except KeyError:
                raise BuildError(f'{sdists[0].name} holds no {SDIST_MEMBER}') from None
            source = sdist.extractfile(member)
            if source is None:
                raise BuildError(f'{SDIST_MEMBER} in {sdists[0].name} is not a file')
            with source, open(partial, 'wb') as sink:
                shutil.copyfileobj(source, sink)
    digest = sha256(partial)
    if digest != JAR_SHA256:
        partial.unlink()
        raise BuildError(f'{JAR_NAME} from {SDIST_REQUIREMENT} has SHA-256 {digest}, '
                         f'expected {JAR_SHA256}; refusing to use it')
    os.replace(partial, target)
    logger.info('xenon-grpc jar is at %s', target)
    return target


def ensure_jar() -> Path:
    """The jar's path, fetching it first when it is nowhere to be found."""
    try:
        return find_jar()
    except BuildError:
        if os.environ.get(JAR_ENV):
            raise
        return fetch_jar()


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
        from importlib.metadata import version
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
        from grpc_tools import protoc
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

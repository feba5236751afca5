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
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from importlib.metadata import version
from typing import IO, Dict, List, Optional, Tuple

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
    """Per-user data directory of the project (platformdirs' ``user_data_dir('cluster')``:
    ``$XDG_DATA_HOME/cluster`` or ``~/.local/share/cluster`` on Linux)."""
    try:
        from platformdirs import user_data_dir as platform_dir  # optional: platformdirs
    except ImportError:  # a build environment without it: the same place on Linux
        base = os.environ.get('XDG_DATA_HOME') or os.path.join(os.path.expanduser('~'),
                                                               '.local', 'share')
        return Path(base) / 'cluster'
    return Path(platform_dir('cluster', appauthor=False))


class JarMissing(BuildError):
    """No jar in any of the places searched."""


def jar_candidates() -> List[Path]:
    """Places searched for the jar, in order (``$XENON_GRPC_JAR`` first)."""
    places = []
    if os.environ.get(JAR_ENV):
        places.append(Path(os.environ[JAR_ENV]).expanduser())
    places += [PROJECT_DIR / 'jar' / JAR_NAME, default_jar_target()]
    return places


def find_jar() -> Path:
    """Path of the xenon-grpc jar; :class:`BuildError` saying what to do when there is none.

    ``$XENON_GRPC_JAR`` is taken as it is (the user's choice). A jar in the checkout's
    ``jar/`` or in the user data directory must have the pinned SHA-256, or it is refused.
    """
    override = os.environ.get(JAR_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise BuildError(f'{JAR_ENV}={override} does not name a file; unset it or point it '
                             f'at {JAR_NAME}')
        return path
    for path in jar_candidates():
        if path.is_file():
            check_jar(path)
            return path
    raise JarMissing(f'the xenon-grpc jar ({JAR_NAME}) is missing: {BUILD_HINT} (it fetches '
                     f'{SDIST_REQUIREMENT} from PyPI), or set {JAR_ENV} to its path')


def default_jar_target() -> Path:
    """Where a fetched jar goes: ``jar/`` of the user data directory."""
    return user_data_dir() / 'jar' / JAR_NAME


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


_CHECKED: Dict[Tuple[str, int, int], str] = {}


def check_jar(path: Path) -> None:
    """Refuse (:class:`BuildError`) a jar whose SHA-256 is not the pinned one."""
    info = path.stat()
    key = (str(path), info.st_size, info.st_mtime_ns)
    digest = _CHECKED.get(key) or sha256(path)
    if digest != JAR_SHA256:
        raise BuildError(f'{path} has SHA-256 {digest}, expected {JAR_SHA256}: refusing to use '
                         f'it (a damaged or foreign jar); remove it and it is fetched again, or '
                         f'set {JAR_ENV}')
    _CHECKED[key] = digest


def fetch_jar(target: Optional[Path] = None, timeout: float = 900) -> Path:
    """Download the pyxenon sdist with pip and extract only the jar to ``target``.

    pip is used so that the user's index, mirror and proxy settings apply.
    """
    target = Path(target) if target else default_jar_target()
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.warning('fetching the xenon-grpc server %s: downloading %s from PyPI (pip download) '
                   'into %s', JAR_NAME, SDIST_REQUIREMENT, target)
    with tempfile.TemporaryDirectory(prefix='xenon-jar-') as tmp:
        argv = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:',
                SDIST_REQUIREMENT, '-d', tmp, '--disable-pip-version-check', '--quiet']
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise BuildError(f'downloading {SDIST_REQUIREMENT} took more than {timeout:.0f} s') from None
        sdists = sorted(Path(tmp).glob('pyxenon-*.tar.gz'))
        if done.returncode != 0 or not sdists:
            raise BuildError(f'could not download {SDIST_REQUIREMENT} with {sys.executable} -m pip '
                             f'(exit code {done.returncode}): '
                             f'{(done.stderr or done.stdout).strip()[-2000:]}')
        fd, partial_name = tempfile.mkstemp(prefix=f'.{JAR_NAME}.', dir=target.parent)
        partial = Path(partial_name)
        try:
            with os.fdopen(fd, 'wb') as sink:
                _extract_jar(sdists[0], sink)
            digest = sha256(partial)
            if digest != JAR_SHA256:
                raise BuildError(f'{JAR_NAME} from {SDIST_REQUIREMENT} has SHA-256 {digest}, '
                                 f'expected {JAR_SHA256}; refusing to use it')
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        finally:
            if partial.exists():
                partial.unlink()
    logger.warning('xenon-grpc jar is at %s (SHA-256 checked)', target)
    return target


def _extract_jar(sdist_path: Path, sink: IO[bytes]) -> None:
    with tarfile.open(sdist_path, 'r:gz') as sdist:
        try:
            member = sdist.getmember(SDIST_MEMBER)
        except KeyError:
            raise BuildError(f'{sdist_path.name} holds no {SDIST_MEMBER}') from None
        source = sdist.extractfile(member)
        if source is None:
            raise BuildError(f'{SDIST_MEMBER} in {sdist_path.name} is not a file')
        with source:
            shutil.copyfileobj(source, sink)


def ensure_jar() -> Path:
    """The jar's path, fetching it into the user data directory when it is nowhere
    (never when ``$XENON_GRPC_JAR`` is set, nor over a jar that was refused)."""
    try:
        return find_jar()
    except JarMissing:
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

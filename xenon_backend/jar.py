"""The xenon-grpc jar: find it, or fetch it once into the user data directory.

xenon-grpc 3.0.1 travels inside the ``pyxenon==3.0.3`` sdist on PyPI as
``lib/xenon-grpc-3.0.1.jar``. ``pip download`` fetches the sdist (so the user's index,
mirror and proxy settings apply) and only the jar is extracted, into ``jar/`` of the user
data directory (:func:`user_data_dir`). A warning on stderr names what is fetched, from
where and to where. Its SHA-256 is checked, then and whenever it is found again;
``$XENON_GRPC_JAR`` names a jar of the user's own, used as it is. The server
(:mod:`xenon_backend.server`) fetches it on first use when it is missing; the build
(:mod:`xenon_backend.build`) before it takes the proto out of it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

JAR_NAME = 'xenon-grpc-3.0.1.jar'
JAR_SHA256 = '8dbb2eb189ed2eb9bdd017ae05df2281d10cb615fea1ca7fc79f394bb309f629'
SDIST_REQUIREMENT = 'pyxenon==3.0.3'
SDIST_MEMBER = 'pyxenon-3.0.3/lib/' + JAR_NAME
JAR_ENV = 'XENON_GRPC_JAR'

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
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



"""Job files: the one naming convention, and :class:`Script`, a file with its text.

For a job named ``<name>`` with suffix ``<suffix>`` (default ``cluster``) in a directory:

========================  ==========================================
``<name>.<suffix>.out``   standard output   (``.err``: standard error)
``<name>.<suffix>.sbatch`` slurm submission script, which runs
``<name>.<suffix>.script`` the slurm exec script
``<name>.<suffix>.qsub``  torque submission script
``<name>.<suffix>``       local submission script
``<name>.<suffix>.code``  exit code, written by the script itself at the end
``<name>_func.<suffix>.py``                 function-job runner call
``<name>_func.<suffix>.py.pickle.in/.out``  dill payload and tagged result
========================  ==========================================

Two jobs given the same name never share files: :func:`reserve` claims a name by
creating its submission script exclusively, and moves on to ``<name>_1``, ``<name>_2``...
when that name is taken.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional

logger = logging.getLogger(__name__)

DEFAULT_SUFFIX = 'cluster'
#: the first line after the shebang of every script this package writes
MARKER = '# written by cluster: https://github.com/cluster-toolkit/cluster'
#: extension of the submission script per batch system ('' means none)
SUBMISSION_EXT: Dict[str, str] = {'slurm': '.sbatch', 'torque': '.qsub', 'local': ''}
#: batch systems that run a separate exec script from the submission script
EXEC_SCRIPT_EXT: Dict[str, str] = {'slurm': '.script'}
_NAME_RE = re.compile(r'^[A-Za-z0-9_.+-]+$')
_NEXT_COUNT: Dict[tuple, int] = {}


@dataclass(frozen=True)
class JobFiles:
    """Every path that belongs to one job; nothing else in the package builds these names."""

    directory: str
    name: str
    suffix: str = DEFAULT_SUFFIX
    qtype: str = 'local'
    #: a submission script written by someone else (``submit_file``)
    script: Optional[str] = None

    @property
    def base(self) -> str:
        return os.path.join(self.directory, f'{self.name}.{self.suffix}')

    @property
    def submission(self) -> str:
        return self.script or self.base + SUBMISSION_EXT.get(self.qtype, '')

    @property
    def exec_script(self) -> Optional[str]:
        ext = EXEC_SCRIPT_EXT.get(self.qtype)
        return self.base + ext if ext else None

    @property
    def outfile(self) -> str:
        return self.base + '.out'

    @property
    def errfile(self) -> str:
        return self.base + '.err'

    @property
    def exitcode(self) -> str:
        return self.base + '.code'

    @property
    def function_py(self) -> str:
        return os.path.join(self.directory, f'{self.name}_func.{self.suffix}.py')

    @property
    def pickle_in(self) -> str:
        return self.function_py + '.pickle.in'

    @property
    def pickle_out(self) -> str:
        return self.function_py + '.pickle.out'

    def scripts(self) -> List[str]:
        """The files the package writes before submission (outputs excluded)."""
        paths = [self.submission, self.exec_script, self.function_py, self.pickle_in]
        return [p for p in paths if p]

    def outputs(self) -> List[str]:
        """The files the job writes while and after it runs."""
        return [self.outfile, self.errfile, self.exitcode, self.pickle_out]

    def all(self) -> List[str]:
        return self.scripts() + self.outputs()


def check_name(name: str) -> str:
    """A job name must be a plain file-name part; anything else is an error that names it."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in ('.', '..'):
        from .errors import OptionError
        raise OptionError(f'job name {name!r} may only hold letters, digits and . _ + -')
    return name


def reserve(directory: str, name: str, suffix: str = DEFAULT_SUFFIX,
            qtype: str = 'local') -> JobFiles:
    """Claim a unique set of job files by creating the submission script exclusively.

    The script is created empty with mode 0600 and filled later by :meth:`Script.write`.
    """
    check_name(name)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = (os.path.abspath(directory), name, suffix)
    count = _NEXT_COUNT.get(key, 0)  # where this process last found a free name
    candidate = f'{name}_{count}' if count else name
    while True:
        files = JobFiles(os.path.abspath(directory), candidate, suffix, qtype)
        if not any(os.path.lexists(p) for p in files.all()[1:]):
            try:
                os.close(os.open(files.submission, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                _NEXT_COUNT[key] = count + 1
                return files
            except FileExistsError:
                pass
        count += 1
        candidate = f'{name}_{count}'


def write_atomic(path: str, data, mode: int = 0o600) -> None:
    """Write ``data`` (str, bytes, or a binary file read in chunks) to ``path`` through a
    temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.')
    try:
        with os.fdopen(fd, 'w' if isinstance(data, str) else 'wb') as handle:
            if hasattr(data, 'read'):
                shutil.copyfileobj(data, handle, 1 << 20)
            else:
                handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_private(path: str, data) -> None:
    """Write ``data`` (str or bytes) to ``path`` with mode 0600, never through a symlink.

    For job inputs, written before the job is submitted, in a directory the user owns, so
    no reader can see them half-written; cheaper than :func:`write_atomic` (one open).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, 'wb' if isinstance(data, bytes) else 'w') as handle:
        os.fchmod(fd, 0o600)  # an existing file would keep its old mode
        handle.write(data)


class Script:
    """A file and the text it should hold."""

    def __init__(self, path: str, text: str = '') -> None:
        self.path = os.path.abspath(path)
        self.text = text

    @property
    def written(self) -> bool:
        """True when the file on disk holds exactly :attr:`text`."""
        try:
            with open(self.path) as handle:
                return handle.read() == self.text
        except OSError:
            return False

    def write(self, overwrite: bool = True) -> None:
        """Write the text (mode 0600, see :func:`write_private`). Without ``overwrite`` an
        existing file with other content is an error; an empty reservation made by
        :func:`reserve` is not.
        """
        if not overwrite and os.path.exists(self.path) and os.path.getsize(self.path) \
                and not self.written:
            raise FileExistsError(f'{self.path} exists and overwrite is False')
        write_private(self.path, self.text)
        logger.debug('wrote %s', self.path)

    def clean(self) -> None:
        """Delete the file if it exists."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return f'Script({self.path!r}, written={self.written})'

"""Job files: the one naming convention, and :class:`Script`, a file with its text.

For a job named ``<name>`` with suffix ``<suffix>`` (default ``cluster``) in a directory:

==================================================  ============================================
``<name>.<suffix>.out``                             standard output (``.err``: standard error)
``<name>.<suffix><submission_ext>``                 submission script (the batch system's
                                                    :attr:`~cluster.batch.BatchSystem.submission_ext`)
``<name>.<suffix><exec_ext>``                       exec script, where the system has one
``<name>.<suffix>.code``                            exit code, written by the script at the end
``<name>.<suffix>.attempts``                        attempts started (a job with ``requeue``)
``<name>_func.<suffix>.py``                         function-job runner call
``<name>_func.<suffix>.py.pickle.in/.out``          dill payload and tagged result
``<name>_func.<suffix>.py.pickle.resume``           the last checkpoint (``cluster.Resume``)
==================================================  ============================================

Two jobs given the same name never share files: :func:`reserve` claims a name (when the
job is written, not when it is made) by creating its submission script exclusively, and
moves on to ``<name>_1``, ``<name>_2``... when that name is taken. Every file is written
through :func:`write_atomic`, so none is ever seen half-written under its final name.
Local copies of a remote job's files outside its directory are :meth:`JobFiles.copy_of`.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from typing import BinaryIO, Dict, List, Optional, Sequence, Union

from ..batch import system_class
from ..run.errors import OptionError, StorageError
from . import runner as _runner

logger = logging.getLogger(__name__)

DEFAULT_SUFFIX = 'cluster'
#: the first line after the shebang of every script this package writes
MARKER = '# written by cluster: https://github.com/cluster-toolkit/cluster'
#: what a claimed submission script holds until the job's scripts are written
RESERVATION = f'#!/bin/bash\n{MARKER}\n# reserved: this job is being written\n'
_NAME_RE = re.compile(r'^[A-Za-z0-9_.+-]+$')
_COPY_RE = re.compile(r'^[0-9a-f]{8}-.')
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
        return self.script or self.base + system_class(self.qtype).submission_ext

    @property
    def exec_script(self) -> Optional[str]:
        ext = system_class(self.qtype).exec_ext
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
    def attempts(self) -> str:
        return self.base + '.attempts'

    @property
    def function_py(self) -> str:
        return os.path.join(self.directory, f'{self.name}_func.{self.suffix}.py')

    @property
    def pickle_in(self) -> str:
        return self.function_py + '.pickle.in'

    @property
    def pickle_out(self) -> str:
        return self.function_py + '.pickle.out'

    @property
    def pickle_resume(self) -> str:
        return self.function_py + '.pickle.resume'

    def copy_of(self, remote_path: str) -> str:
        """Where the local copy of a remote file of this job goes that lies outside the
        job's directory (an ``outfile`` the user chose): a name of this job's own,
        ``<name>.<suffix>.copy-<8 hex of the path>-<basename>``, never the user's file."""
        digest = hashlib.sha1(remote_path.encode()).hexdigest()[:8]
        return f'{self.base}.copy-{digest}-{os.path.basename(remote_path)}'

    def is_copy(self, entry: str) -> bool:
        """True for a file name in :attr:`directory` made by :meth:`copy_of` for this job."""
        prefix = f'{self.name}.{self.suffix}.copy-'
        return entry.startswith(prefix) and _COPY_RE.match(entry[len(prefix):]) is not None

    def is_temporary(self, entry: str) -> bool:
        """True for a file name in :attr:`directory` that is a temporary file of
        :func:`write_atomic` for one of this job's files (left by a killed writer)."""
        return entry.endswith(_runner.TMP_SUFFIX) and any(
            entry.startswith('.' + os.path.basename(path) + '.') for path in self.all())

    def scripts(self) -> List[str]:
        """The files the package writes before submission (outputs excluded)."""
        paths = [self.submission, self.exec_script, self.function_py, self.pickle_in]
        return [p for p in paths if p]

    def outputs(self) -> List[str]:
        """The files the job writes while and after it runs."""
        return [self.outfile, self.errfile, self.exitcode, self.pickle_out, self.attempts,
                self.pickle_resume]

    def all(self) -> List[str]:
        return self.scripts() + self.outputs()


def check_name(name: str) -> str:
    """A job name must be a plain file-name part; anything else is an error that names it."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in ('.', '..'):
        raise OptionError(f'job name {name!r} may only hold letters, digits and . _ + -')
    return name


def job_sets(names: Sequence[str], directory: str, suffix: str,
              qtypes: Sequence[str]) -> List[JobFiles]:
    """The job file sets whose submission script is among ``names``."""
    found = []
    for entry in names:
        for kind in qtypes:
            ending = f'.{suffix}{system_class(kind).submission_ext}'
            if entry.endswith(ending) and len(entry) > len(ending):
                found.append(JobFiles(directory, entry[:-len(ending)], suffix, kind))
    return found


def reserve(directory: str, name: str, suffix: str = DEFAULT_SUFFIX,
            qtype: str = 'local') -> JobFiles:
    """Claim a unique set of job files by creating the submission script exclusively.

    Called when a job is written, never before. The script is created holding
    :data:`RESERVATION` (mode 0600), so that :func:`cluster.clean_dir` recognises it if the
    writer dies before :meth:`Script.write` fills it.
    """
    check_name(name)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise write_error(directory, exc) from None
    key = (os.path.abspath(directory), name, suffix)
    count = _NEXT_COUNT.get(key, 0)  # where this process last found a free name
    candidate = f'{name}_{count}' if count else name
    while True:
        files = JobFiles(os.path.abspath(directory), candidate, suffix, qtype)
        if not any(os.path.lexists(p) for p in files.all()[1:]):
            try:
                _create_reservation(files.submission)
                _NEXT_COUNT[key] = count + 1
                return files
            except FileExistsError:
                pass
        count += 1
        candidate = f'{name}_{count}'


def _create_reservation(path: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, RESERVATION.encode())
    except OSError as exc:
        os.close(fd)
        os.unlink(path)
        raise write_error(path, exc) from None
    os.close(fd)


def write_error(path: str, exc: OSError) -> StorageError:
    """The error for a job file that cannot be written: it names the path, and says so
    when the disk (or the quota) is full."""
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return StorageError(f'cannot write {path}: '
                        + (f'the disk is full ({exc.strerror})' if full else str(exc.strerror)))


def write_atomic(path: str, data: Union[str, bytes, BinaryIO], mode: int = 0o600,
                 sync: bool = True) -> None:
    """Write ``data`` (str, bytes, or a binary file read in chunks) to ``path``
    atomically (see :func:`cluster.script.runner.write_atomic`: temporary file, fsync, rename,
    never through a symlink); a failure is a :class:`~cluster.run.errors.StorageError`
    naming the path."""
    try:
        _runner.write_atomic(path, data, mode, sync)
    except OSError as exc:
        raise write_error(path, exc) from None


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
        """Write the text (mode 0600, see :func:`write_atomic`). Without ``overwrite`` an
        existing file with other content is an error; a reservation made by
        :func:`reserve` is not.
        """
        if not overwrite and os.path.exists(self.path) and not self.written \
                and not _is_reservation(self.path):
            raise FileExistsError(f'{self.path} exists and overwrite is False')
        write_atomic(self.path, self.text)
        logger.debug('wrote %s', self.path)

    def clean(self) -> None:
        """Delete the file if it exists."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return f'Script({self.path!r}, written={self.written})'


def _is_reservation(path: str) -> bool:
    try:
        with open(path) as handle:
            return handle.read(len(RESERVATION) + 1) == RESERVATION
    except OSError:
        return False

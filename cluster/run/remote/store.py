"""A job's files on a remote host, moved with SFTP: :class:`RemoteStore`.

Each job gets its own remote directory, made exclusively (mode 0700), so no two jobs
ever share or clobber files::

    <workdir>/cluster-jobs/<local dir name>-<hash of host and local dir>/<name>.<suffix>/

The files are written on this machine as always (the local mirrors, in the job's local
directory) and pushed there with mode 0600; outputs are pulled back before reading.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
import posixpath
import re
import shlex
import socket
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ...script.files import DEFAULT_SUFFIX, MARKER, JobFiles, job_sets, reserve, write_atomic
from ..storage import Store, remove_local
from .connection import Connection
from .endpoint import Endpoint, RemotePathError

logger = logging.getLogger(__name__)

#: the folder under the remote workdir that holds the per-job directories
JOBS_FOLDER = 'cluster-jobs'
FILE_MODE = 0o600
DIR_MODE = 0o700
#: bytes read into memory in one message; bigger files are streamed to disk
INLINE_LIMIT = 8 << 20
#: bytes per message when a file is pushed
CHUNK = 1 << 16
#: (address, remote folder) whose owner this process checked, or that it made
_VERIFIED: Set[Tuple[str, str]] = set()


def local_dir_tag(directory: str) -> str:
    """A stable, readable folder name for a local directory: ``<basename>-<8 hex>``."""
    directory = os.path.abspath(directory)
    digest = hashlib.sha1(f'{socket.gethostname()}:{directory}'.encode()).hexdigest()[:8]
    base = ''.join(c if c.isalnum() or c in '._-' else '_' for c in os.path.basename(directory))
    return f'{base.strip("._") or "root"}-{digest}'


class RemoteStore(Store):
    """Target paths on the endpoint of ``connection``; push/pull/remove through its sftp."""

    #: function payloads must carry what the remote Python cannot import
    ships_functions_by_value = True

    def __init__(self, connection: Connection, endpoint: Optional[Endpoint] = None) -> None:
        self.connection = connection
        self.endpoint = endpoint or connection.endpoint
        self.python = self.endpoint.python

    # -- paths ------------------------------------------------------------------------------
    @property
    def jobs_root(self) -> str:
        return posixpath.join(self.connection.workdir(self.endpoint), JOBS_FOLDER)

    def job_dir(self, files: JobFiles) -> str:
        """The remote directory of ``files``' job."""
        return posixpath.join(self.jobs_root, local_dir_tag(files.directory),
                              f'{files.name}.{files.suffix}')

    def target(self, files: JobFiles) -> JobFiles:
        return JobFiles(self.job_dir(files), files.name, files.suffix, files.qtype,
                        script=(posixpath.join(self.job_dir(files), os.path.basename(files.script))
                                if files.script else None))

    def local(self, files: JobFiles, target_path: str) -> str:
        """The local copy of a target path: the job's own file name for a file in its
        remote directory, else a per-job name (:meth:`JobFiles.copy_of`), so a copy never
        lands on a user's file."""
        if posixpath.dirname(target_path) == self.job_dir(files):
            return os.path.join(files.directory, posixpath.basename(target_path))
        return files.copy_of(target_path)

    @property
    def default_runpath(self) -> str:
        return self.connection.workdir(self.endpoint)

    # -- claiming a job's names ---------------------------------------------------------------
    def claim(self, directory: str, name: str, suffix: str,
              qtype: str) -> Tuple[JobFiles, JobFiles]:
        """Reserve the local names and make the job's remote directory, both exclusively.

        The folders above it are made 0700, or, when they exist, must be this user's and
        closed to others (checked once per process): else :class:`RemotePathError`.
        """
        parent = posixpath.join(self.jobs_root, local_dir_tag(directory))
        self._make_dirs(parent)
        for _ in range(1000):
            files = reserve(directory, name, suffix, qtype)
            target = self.target(files)
            try:
                made = self._make_dir(target.directory)
            except BaseException:
                os.unlink(files.submission)
                raise
            if made:
                _VERIFIED.add((self.endpoint.address, target.directory))
                return files, target
            logger.info('%s exists on %s; trying the next name', target.directory,
                        self.connection.endpoint.address)
            os.unlink(files.submission)  # the local reservation
        raise RemotePathError(f'no free job directory under {parent} for {name!r}')

    # -- privacy: what this package trusts on the remote side -------------------------------
    def check_private(self, files: JobFiles, target_path: str) -> None:
        """Refuse a remote file that others could have written: it must be a regular
        file, not writable by group or others, in the job's directory, which must be this
        user's and closed to others. Checked on the remote side (SFTP attributes), not on
        the local copy."""
        import xenon_backend as xb  # heavy: xenon_backend (grpc)
        directory = posixpath.dirname(target_path)
        self._check_dir(directory)

        def attributes(_, fs):
            return fs.get_attributes(target_path)
        info = self._guard(target_path, 'inspect', attributes)
        mode = xb.PosixFilePermission.to_mode(info.permissions)
        if info.is_symbolic_link or not info.is_regular or mode & 0o022:
            raise RemotePathError(
                f'refusing to trust {target_path} on {self.endpoint.address}: it must be a '
                f'regular file not writable by group or others (mode {mode:o}'
                f'{", a symlink" if info.is_symbolic_link else ""})')

    def _check_dir(self, path: str) -> None:
        """An existing remote folder of this package must be a directory not writable by
        group or others, and this user's (the owner is looked up once per process)."""
        import xenon_backend as xb  # heavy: xenon_backend (grpc)
        def attributes(_, fs):
            return fs.get_attributes(path)
        info = self._guard(path, 'inspect', attributes)
        mode = xb.PosixFilePermission.to_mode(info.permissions)
        problem = None
        if info.is_symbolic_link or not info.is_directory:
            problem = 'it is not a directory'
        elif mode & 0o022:
            problem = f'group or others may write to it (mode {mode:o})'
        elif (self.endpoint.address, path) not in _VERIFIED:
            owner = info.owner or self._owner(path)
            if owner != self.endpoint.user:
                problem = f'it belongs to {owner!r}, not {self.endpoint.user!r}'
        if problem:
            raise RemotePathError(
                f'refusing to use {path} on {self.endpoint.address}: {problem}; remove it or '
                f'make it yours with mode 700')
        _VERIFIED.add((self.endpoint.address, path))

    def _owner(self, path: str) -> str:
        """The owner's name of a remote path (SFTP does not tell it: ``stat`` does)."""
        code, out, err = self.connection.run(['stat', '-c', '%U', '--', path], timeout=60)
        if code != 0:
            raise RemotePathError(f'cannot inspect {path} on {self.endpoint.address}: '
                                  f'{err.strip() or f"exit code {code}"}')
        return out.strip()

    def _make_dirs(self, path: str) -> None:
        """Make ``path`` and the folders above it up to the jobs root (0700); check the
        ones of this package that exist already (see :meth:`_check_dir`)."""
        def make(_, fs) -> List[str]:
            missing = []
            probe = path
            while probe not in ('', '/') and not fs.exists(probe):
                missing.append(probe)
                probe = posixpath.dirname(probe)
            for folder in reversed(missing):
                self._mkdir_private(fs, folder, exist_ok=True)
            return missing
        made = self._guard(path, 'create the directory', make)
        for folder in (self.jobs_root, path):
            if folder in made:
                _VERIFIED.add((self.endpoint.address, folder))
            else:
                self._check_dir(folder)

    def _make_dir(self, path: str) -> bool:
        """Make ``path`` (0700); False when it exists already."""
        from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
        def make(_, fs) -> bool:
            try:
                self._mkdir_private(fs, path)
            except xe.PathAlreadyExistsException:
                return False
            return True
        return self._guard(path, 'create the directory', make)

    @staticmethod
    def _mkdir_private(fs, path: str, exist_ok: bool = False) -> None:
        import xenon_backend as xb  # heavy: xenon_backend (grpc)
        from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
        try:
            fs.create_directory(path)
        except xe.PathAlreadyExistsException:
            if not exist_ok:
                raise
            return
        fs.set_posix_file_permissions(path, xb.PosixFilePermission.from_mode(DIR_MODE))

    def _guard(self, path: str, what: str, operation):
        """Run a filesystem operation; a failure names the remote path."""
        from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
        try:
            return self.connection.call(operation)
        except xe.XenonException as exc:
            raise RemotePathError(f'cannot {what} {path} on {self.connection.endpoint.address}: '
                                  f'{exc.message}') from None

    # -- moving files -------------------------------------------------------------------------
    def push(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Send the local copies to their targets (replacing them), mode 0600.

        A file is streamed from disk in chunks: it is never held in memory whole.
        """
        import xenon_backend as xb  # heavy: xenon_backend (grpc)
        mode = xb.PosixFilePermission.from_mode(FILE_MODE)
        for path in dict.fromkeys(target_paths):
            local = self.local(files, path)

            def write(_, fs, path=path, local=local) -> None:
                if fs.exists(path):
                    fs.delete(path)
                with open(local, 'rb') as handle:
                    size = os.fstat(handle.fileno()).st_size
                    fs.write_to_file(path, iter(lambda: handle.read(CHUNK), b''), size=size)
                fs.set_posix_file_permissions(path, mode)
            self._guard(path, 'write', write)
            logger.debug('pushed %s', path)

    def pull(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Refresh the local copies of the targets; a target that no longer exists has no
        local copy either, when that copy is the package's own (:meth:`_own_copy`).

        A file of more than :data:`INLINE_LIMIT` bytes is copied to disk by the Xenon
        server in a stream, never through this process's memory, whatever its size.
        """
        from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
        for path in dict.fromkeys(target_paths):
            local = self.local(files, path)

            def read(_, fs, path=path, local=local):
                try:
                    if fs.get_attributes(path).size <= INLINE_LIMIT:
                        return fs.read_bytes(path)
                except xe.NoSuchPathException:
                    return _MISSING
                _download(fs, path, local)
                return None
            data = self._guard(path, 'read', read)
            if data is _MISSING:
                # a copy pulled earlier would tell of a file that is gone (a requeued
                # attempt deleted the last one's exit code): it goes, if it is ours
                if self._own_copy(files, path, local):
                    remove_local([local])
            elif data is not None:
                write_atomic(local, data)

    def _own_copy(self, files: JobFiles, target_path: str, local: str) -> bool:
        """True when ``local`` is a name of the job's own that :meth:`local` gave the
        target, which the store may delete: a :meth:`JobFiles.copy_of`, or, for a file of
        the job's remote directory, one of the job's claimed names (``<name>.<suffix>.*``,
        ``<name>_func.<suffix>.py*``: the job's files, its array tasks' files).

        Never a user's file: not the script of ``submit_file``, nor a name the user chose
        in the remote job directory (an ``outfile``), which maps to the same base name here.
        """
        if local == files.copy_of(target_path):
            return True
        if os.path.dirname(local) != files.directory or local == files.script:
            return False
        entry = os.path.basename(local)
        return local in files.all() or entry.startswith(
            (f'{files.name}.{files.suffix}.', f'{files.name}_func.{files.suffix}.py'))

    def remove(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Delete the targets, and the job's directory once it is empty."""
        from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
        paths: List[str] = list(dict.fromkeys(target_paths))
        directory = self.job_dir(files)

        def remove(_, fs) -> None:
            for path in paths:
                try:
                    fs.delete(path)
                except xe.NoSuchPathException:
                    pass
            try:
                if not any(True for _ in fs.list(directory)):
                    fs.delete(directory)
            except xe.NoSuchPathException:
                pass
        self._guard(directory, 'delete files in', remove)

    def prepare_function(self) -> None:
        """Check once per endpoint that the remote Python imports dill."""
        self.connection.check_python(self.python)

    def list_dir(self, path: str) -> List[Tuple[str, bool]]:
        """(name, is_directory) of the entries of a remote directory; [] when it is missing."""
        from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
        def listing(_, fs):
            try:
                return [(posixpath.basename(str(a.path)), a.is_directory) for a in fs.list(path)]
            except xe.NoSuchPathException:
                return []
        return self._guard(path, 'list', listing)

    def read_head(self, path: str, limit: int = 16384) -> Optional[bytes]:
        """The first ``limit`` bytes of a remote file, None when it does not exist."""
        from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
        def read(_, fs):
            try:
                if fs.get_attributes(path).size <= INLINE_LIMIT:
                    return fs.read_bytes(path)[:limit]
            except xe.NoSuchPathException:
                return None
            return _BIG
        head = self._guard(path, 'read', read)
        if head is _BIG:   # too big to read whole: only its head comes over, as base64
            script = f'head -c {int(limit)} -- {shlex.quote(path)} | base64'
            code, out, err = self.connection.run(['sh', '-c', script])
            if code != 0:
                raise RemotePathError(f'cannot read {path} on {self.endpoint.address}: '
                                      f'{err.strip() or f"exit code {code}"}')
            head = base64.b64decode(out)
        return head


    # -- what job.py's submit_file and clean_dir ask of every store ----------------------------
    def place_script(self, path: str, qtype: str) -> Tuple[JobFiles, JobFiles, Dict[str, str]]:
        """Copy a user's script into a job directory of its own; its output lands there."""
        stem = re.sub(r'[^A-Za-z0-9_.+-]+', '_', os.path.basename(path)).strip('._') or 'job'
        files, target = self.claim(os.path.dirname(path), stem, DEFAULT_SUFFIX, qtype)
        os.unlink(files.submission)  # only the remote directory is wanted
        files = dataclasses.replace(files, script=path)
        target = dataclasses.replace(target, script=posixpath.join(target.directory,
                                                                     os.path.basename(path)))
        self.push(files, [target.script])
        return files, target, {'outfile': target.outfile, 'errfile': target.errfile}

    def jobs_elsewhere(self, directory: str, suffix: str, qtypes: Sequence[str],
                       delete_outputs: bool) -> Dict[JobFiles, List[str]]:
        """Remote files of the jobs written from ``directory``, by (local) job file set:
        only job directories whose submission script carries this package's marker."""
        parent = posixpath.dirname(self.job_dir(JobFiles(directory, 'x', suffix)))
        result: Dict[JobFiles, List[str]] = {}
        for entry, is_dir in self.list_dir(parent):
            if not is_dir:
                continue
            job_dir = posixpath.join(parent, entry)
            names = [name for name, sub in self.list_dir(job_dir) if not sub]
            for files in job_sets(names, directory, suffix, qtypes):
                target = self.target(files)
                if target.directory != job_dir:
                    continue
                if MARKER.encode() not in (self.read_head(target.submission) or b''):
                    continue
                paths = target.all() if delete_outputs else target.scripts()
                result[files] = [p for p in paths if posixpath.basename(p) in names]
        return result

    def job_kinds(self, qtype: str) -> List[str]:
        """Only the system's own: this store's jobs were written for it."""
        return [qtype]


_BIG = object()
#: what a pull reads of a target that does not exist
_MISSING = object()


def _download(fs, path: str, local: str) -> None:
    """Copy the remote ``path`` to ``local`` through a private temporary directory beside
    it (the server writes the file there), then :func:`write_atomic` it into place."""
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(local)),
                                     prefix='.pull-') as folder:
        part = os.path.join(folder, 'part')
        fs.download(path, part)
        fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, 'rb') as handle:
            write_atomic(local, handle)
    logger.debug('pulled %s in a stream', path)

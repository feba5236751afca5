"""Where job files live as the batch system sees them, and how they reach this machine.

A job's files are always written and read on this machine (``JobFiles`` of the local
directory). A :class:`Store` maps them onto the paths the batch system uses (the
*target*) and moves them: :meth:`Store.push` after writing, :meth:`Store.pull` before
reading. :class:`LocalStore` is the identity: target and local files are the same. A
remote store (SFTP through Xenon) keeps the target in a per-job directory on the
remote host.
"""
from __future__ import annotations

import abc
import logging
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..batch import SYSTEMS
from ..script.files import DEFAULT_SUFFIX, JobFiles, reserve

logger = logging.getLogger(__name__)


class Store(abc.ABC):
    """Where a job's files live for the batch system: the operations every store offers.

    ``claim`` a job's names, ``push`` written files to their targets, ``pull`` outputs
    back, ``read_head`` of a target file, ``list_dir`` a target directory and ``remove``
    target files; callers never ask which store they have.
    """

    #: function payloads carry by value what the Python running them cannot import
    #: (another machine: see :func:`cluster.script.function.write_payload`)
    ships_functions_by_value = False
    #: the Python that runs function jobs (None: this one)
    python: Optional[str] = None
    #: where jobs run when no ``dir`` is given (None: the current directory)
    default_runpath: Optional[str] = None

    @abc.abstractmethod
    def claim(self, directory: str, name: str, suffix: str,
              qtype: str) -> Tuple[JobFiles, JobFiles]:
        """Reserve a unique set of job files; return (local files, target files)."""

    @abc.abstractmethod
    def target(self, files: JobFiles) -> JobFiles:
        """The job's files as the batch system sees them."""

    @abc.abstractmethod
    def local(self, files: JobFiles, target_path: str) -> str:
        """The local copy of a target path of ``files``' job."""

    @abc.abstractmethod
    def push(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Send freshly written local files to their targets."""

    @abc.abstractmethod
    def pull(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Refresh the local copies of target files; a target that is gone has no copy of
        the store's own left either (a user's file is never deleted)."""

    @abc.abstractmethod
    def read_head(self, path: str, limit: int = 16384) -> Optional[bytes]:
        """The first ``limit`` bytes of a target file, None when it does not exist."""

    @abc.abstractmethod
    def list_dir(self, path: str) -> List[Tuple[str, bool]]:
        """(name, is_directory) of the entries of a target directory; [] when it is missing."""

    @abc.abstractmethod
    def remove(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Delete target files (the local copies are the caller's)."""

    @abc.abstractmethod
    def place_script(self, path: str, qtype: str) -> Tuple[JobFiles, JobFiles, Dict[str, str]]:
        """Make a user's existing script submittable: (local files, target files, the
        submit options it needs)."""

    @abc.abstractmethod
    def jobs_elsewhere(self, directory: str, suffix: str, qtypes: Sequence[str],
                       delete_outputs: bool) -> Dict[JobFiles, List[str]]:
        """Target files, outside ``directory``, of this package's jobs written from it."""

    def job_kinds(self, qtype: str) -> List[str]:
        """The kinds of job file sets in a local directory that can be this store's jobs
        of a system of ``qtype``."""
        return [qtype]

    def prepare_function(self) -> None:
        """Make sure function jobs can run (the remote store checks its Python)."""

    def check_private(self, files: JobFiles, target_path: str) -> None:
        """Refuse a target file others could have written."""

    def read_text(self, files: JobFiles, target_path: str) -> Optional[str]:
        """Pull one target file and return its text, or None when it does not exist."""
        self.pull(files, [target_path])
        try:
            with open(self.local(files, target_path), errors='replace') as handle:
                return handle.read()
        except FileNotFoundError:
            return None


class LocalStore(Store):
    """The batch system reads and writes this machine's files directly."""

    def claim(self, directory: str, name: str, suffix: str,
              qtype: str) -> Tuple[JobFiles, JobFiles]:
        files = reserve(directory, name, suffix, qtype)
        return files, self.target(files)

    def target(self, files: JobFiles) -> JobFiles:
        return files

    def local(self, files: JobFiles, target_path: str) -> str:
        return target_path

    def check_private(self, files: JobFiles, target_path: str) -> None:
        """Nothing to do: locally the reader checks the open file itself
        (:func:`cluster.script.runner.open_private`)."""

    def push(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Nothing to send: the targets are the local files."""

    def pull(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Nothing to fetch: the targets are the local files."""

    def read_head(self, path: str, limit: int = 16384) -> Optional[bytes]:
        try:
            with open(path, 'rb') as handle:
                return handle.read(limit)
        except FileNotFoundError:
            return None

    def list_dir(self, path: str) -> List[Tuple[str, bool]]:
        try:
            return [(entry.name, entry.is_dir()) for entry in os.scandir(path)]
        except FileNotFoundError:
            return []

    def remove(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Nothing beyond the local copies, which are the caller's."""

    def place_script(self, path: str, qtype: str) -> Tuple[JobFiles, JobFiles, Dict[str, str]]:
        """The script is submitted where it is, its output lands where the system puts it."""
        files = JobFiles(os.path.dirname(path), os.path.basename(path), DEFAULT_SUFFIX,
                         qtype, script=path)
        return files, files, {}

    def jobs_elsewhere(self, directory: str, suffix: str, qtypes: Sequence[str],
                       delete_outputs: bool) -> Dict[JobFiles, List[str]]:
        """None: a local job's files are all in its directory."""
        return {}

    def job_kinds(self, qtype: str) -> List[str]:
        """Every kind: a local directory may hold jobs of every system."""
        return list(SYSTEMS)


def remove_local(paths: Iterable[str]) -> None:
    """Delete local files, ignoring the ones already gone."""
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

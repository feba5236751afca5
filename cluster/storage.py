"""Where job files live as the batch system sees them, and how they reach this machine.

A job's files are always written and read on this machine (``JobFiles`` of the local
directory). A :class:`Store` maps them onto the paths the batch system uses (the
*target*) and moves them: :meth:`Store.push` after writing, :meth:`Store.pull` before
reading. :class:`LocalStore` is the identity: target and local files are the same. A
remote store (SFTP through Xenon) keeps the target in a per-job directory on the
remote host.
"""
from __future__ import annotations

import logging
import os
from typing import Iterable, Optional, Tuple

from .script import JobFiles, reserve

logger = logging.getLogger(__name__)


class LocalStore:
    """The batch system reads and writes this machine's files directly."""

    #: True when function payloads must travel to another machine (see cluster.payload.function)
    portable = False
    #: the Python that runs function jobs (None: this one)
    python: Optional[str] = None
    #: where jobs run when no ``dir`` is given (None: the current directory)
    default_runpath: Optional[str] = None

    def claim(self, directory: str, name: str, suffix: str,
              qtype: str) -> Tuple[JobFiles, JobFiles]:
        """Reserve a unique set of job files; return (local files, target files)."""
        files = reserve(directory, name, suffix, qtype)
        return files, self.target(files)

    def prepare_function(self) -> None:
        """Make sure function jobs can run (the remote store checks its Python)."""

    def target(self, files: JobFiles) -> JobFiles:
        """The job's files as the batch system sees them."""
        return files

    def local(self, files: JobFiles, target_path: str) -> str:
        """The local copy of a target path of ``files``' job."""
        return target_path

    def check_private(self, files: JobFiles, target_path: str) -> None:
        """Refuse a target file others could have written (locally the reader checks the
        open file itself: :func:`cluster.payload.runner.open_private`)."""

    def push(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Send freshly written local files to their targets."""

    def pull(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Refresh the local copies of target files that exist (missing ones are skipped)."""

    def delete(self, files: JobFiles, target_paths: Iterable[str]) -> None:
        """Delete target files (the local copies are the caller's)."""

    def read_text(self, files: JobFiles, target_path: str) -> Optional[str]:
        """Pull one target file and return its text, or None when it does not exist."""
        self.pull(files, [target_path])
        try:
            with open(self.local(files, target_path), errors='replace') as handle:
                return handle.read()
        except FileNotFoundError:
            return None


def remove_local(paths: Iterable[str]) -> None:
    """Delete local files, ignoring the ones already gone."""
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

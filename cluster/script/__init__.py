"""What a job leaves on disk and what runs on the node.

* :mod:`cluster.script.files`: the one naming convention of job files (:class:`JobFiles`),
  claiming a name, :class:`Script`; everything public is importable from ``cluster.script``.
* :mod:`cluster.script.function`: a function job's payload, this side: pickle the call
  with dill (by value for functions of modules the node cannot import), read the result.
* :mod:`cluster.script.runner`: the node side, the one program called "runner". Standard
  library and dill only: its source is copied verbatim into ``<name>_func.<suffix>.py``
  next to the payload, so a node without ``cluster`` installed runs it with ``python``. It
  also holds the package's one atomic write (temporary file, fsync, rename) and the checked
  open of pickles.
"""
from __future__ import annotations

from .files import (DEFAULT_SUFFIX, MARKER, JobFiles, Script, check_name, job_sets, reserve,
                    write_atomic, write_error)

__all__ = ['DEFAULT_SUFFIX', 'MARKER', 'JobFiles', 'Script', 'check_name', 'job_sets', 'reserve',
           'write_atomic', 'write_error']

"""The module-level helpers of the Job API: ``make_job``, ``make_job_file``, ``submit``,
``submit_file``, ``clean`` and ``clean_dir``."""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional, Sequence, Set, Union

from .. import batch, queue
from ..run.errors import ClusterError, JobError
from ..run.place import place
from ..run.storage import LocalStore
from ..script.files import DEFAULT_SUFFIX, MARKER, job_sets
from .core import Job
from .prepare import Command, dependency_ids


def make_job(command: Command, args: Optional[Sequence] = None, **kwds: Any) -> Job:
    """A :class:`Job`, neither written nor submitted."""
    return Job(command, args, **kwds)


def make_job_file(command: Command, args: Optional[Sequence] = None, **kwds: Any) -> str:
    """Write a job's files and return the path of its submission script."""
    return Job(command, args, **kwds).write().submission.path


def submit(command: Command, args: Optional[Sequence] = None, **kwds: Any) -> Job:
    """Create, write and submit a job; return it.

    >>> submit(sum, ([1, 2, 3],)).get()
    6
    """
    max_queue_len = kwds.pop('max_queue_len', None)
    return Job(command, args, **kwds).submit(max_queue_len)


def submit_file(script_file: str, dependencies: Optional[Sequence] = None,
                threads: Optional[int] = None, qtype: Optional[str] = None,
                remote: Any = None, profile: Optional[str] = None) -> str:
    """Submit an existing script as it is; return the job id.

    With ``remote`` (an ``ssh://`` address) or a remote ``profile`` the script is copied
    into a job directory of its own on that host and submitted there; its output lands
    in that directory.
    """
    if not os.path.isfile(script_file):
        raise JobError(f'no script file {script_file!r}')
    store, system = place(qtype, profile, remote)
    path = os.path.abspath(script_file)
    options: Dict[str, Any] = {'threads': int(threads)} if threads else {}  # local mode only
    files, target, placed = store.place_script(path, system.name)
    options.update(placed)
    job_id = system.submit(target, dependency_ids(dependencies or [], system), options)
    queue.watcher(system).track(job_id, files, store)
    return job_id


def clean(jobs: Union[Job, Sequence[Job]], delete_outputs: bool = False) -> None:
    """Clean one job or a list of jobs."""
    for job in jobs if isinstance(jobs, (list, tuple, set)) else [jobs]:
        job.clean(delete_outputs)


def clean_dir(directory: str = '.', suffix: str = DEFAULT_SUFFIX, qtype: Optional[str] = None,
              confirm: bool = False, delete_outputs: bool = True, remote: Any = None,
              profile: Optional[str] = None) -> Set[str]:
    """Delete the files of jobs this package wrote in ``directory``; return their paths.

    Only job sets whose submission script carries this package's marker line are
    touched (a job whose writer was killed too: its claim carries the marker, and its
    temporary files go with it; local copies of remote outputs go with the outputs), so
    a user's own file named like a job file is never deleted. With ``remote`` or a remote
    ``profile``, the remote job directories of the jobs written
    from ``directory`` go too (their paths are in the answer).
    """
    directory = os.path.abspath(directory)
    store, system = place(qtype, profile, remote) if (remote or profile) \
        else (LocalStore(), None)
    qtypes = [qtype] if qtype else (store.job_kinds(system.name) if system
                                    else list(batch.SYSTEMS))
    doomed: Set[str] = set()
    entries = os.listdir(directory)
    for files in job_sets(entries, directory, suffix, qtypes):
        if _has_marker(files.submission):
            paths = files.all() if delete_outputs else files.scripts()
            paths += [os.path.join(directory, e) for e in entries if files.is_temporary(e)
                      or (delete_outputs and files.is_copy(e))]
            doomed.update(p for p in paths if os.path.isfile(p))
    remote_doomed = store.jobs_elsewhere(directory, suffix, qtypes, delete_outputs)
    if (doomed or remote_doomed) and confirm:
        if sys.stdin is None or not sys.stdin.isatty():
            raise ClusterError(f'cannot ask whether to delete {len(doomed)} files in '
                               f'{directory} without a terminal: pass confirm=False '
                               '(cluster clean --yes)')
        answer = input(f'Delete {len(doomed)} files in {directory}'
                       + (f' and {sum(map(len, remote_doomed.values()))} remote files'
                          if remote_doomed else '') + '? [y/N] ')
        if answer.strip().lower() not in ('y', 'yes'):
            return set()
    for path in doomed:
        os.unlink(path)
    for files, paths in remote_doomed.items():
        store.remove(files, paths)
        doomed.update(paths)
    return doomed


def _has_marker(path: str) -> bool:
    try:
        with open(path, errors='replace') as handle:
            return MARKER in handle.read(16384)
    except OSError:
        return False

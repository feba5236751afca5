"""Batch queues: :class:`Queue` (the jobs of one user on one batch system), :func:`wait`,
and detection. The polling itself is :mod:`cluster.queue.watch`: one :class:`Watcher` per
batch system and user issues at most one status command for all tracked jobs per poll
interval (``queue_update`` in ``~/.cluster``), plus at most one accounting query for jobs
that have left the queue.
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional

from .. import batch
from ..batch import BatchSystem, JobInfo
from ..run.errors import ClusterError
from ..run.place import place
from .outcomes import SIGNAL_CODES, outcome, read_exitcode
from .watch import (MAX_POLL_FAILURES, MISSING_POLLS, Watcher, _left, _setting, _user_of,
                    submitting, watcher)

__all__ = ['Queue', 'Watcher', 'wait', 'check_queue', 'get_cluster_environment', 'outcome',
           'read_exitcode', 'submitting', 'watcher', 'MODE', 'MAX_POLL_FAILURES',
           'MISSING_POLLS', 'SIGNAL_CODES']

#: the detected batch system, set by :func:`get_cluster_environment`
MODE: Optional[str] = None


def _job_ids(jobs) -> List[str]:
    """Ids from Jobs, ids, or (nested) lists of them."""
    if isinstance(jobs, (list, tuple, set, frozenset)):
        return [i for job in jobs for i in _job_ids(job)]
    job_id = getattr(jobs, 'id', jobs)
    if job_id is None:
        raise ClusterError(f'{jobs!r} has not been submitted, so it has no id to wait for')
    return [str(job_id)]


class Queue:
    """The jobs of one user on one batch system; ``len()`` counts the unfinished ones.

    ``profile`` (or ``remote``, an ``ssh://`` address) names a remote cluster; ``system``
    is a batch system instance (what :class:`~cluster.Job` passes).
    """

    def __init__(self, user: Optional[str] = None, qtype: Optional[str] = None,
                 profile: Optional[str] = None, remote: Optional[str] = None,
                 system: Optional[BatchSystem] = None) -> None:
        if system is None:
            system = place(qtype, profile, remote)[1]
        elif qtype and qtype != system.name:
            raise ClusterError(f'qtype {qtype!r} given, but the profile runs {system.name}')
        self.system = system
        self.qtype = system.name
        self.user = user or _user_of(system)
        self._watcher = watcher(self.system, self.user)

    @property
    def queue(self) -> Dict[str, JobInfo]:
        """Job id -> :class:`JobInfo` for every job of the user the batch system knows."""
        return self._watcher.listing

    def __len__(self) -> int:
        return self._watcher.open_count()

    def __iter__(self):
        return iter(self.queue.values())

    def __repr__(self) -> str:
        return f'Queue(user={self.user!r}, qtype={self.qtype!r}, jobs={len(self)})'

    def can_submit(self, max_queue_len: Optional[int] = None) -> bool:
        """True while fewer than ``max_queue_len`` (default from ~/.cluster) jobs are open."""
        limit = max_queue_len if max_queue_len is not None else _setting('max_queue_len', 1000)
        return len(self) < limit

    def wait_to_submit(self, max_queue_len: Optional[int] = None,
                       timeout: Optional[float] = None) -> None:
        """Block until :meth:`can_submit` is true."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.can_submit(max_queue_len):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f'queue still full after {timeout} s')
            open_ids = [i for i, info in self.queue.items() if not info.state.final]
            pause = max(0.05, self._watcher.interval)
            if self.system.block(open_ids, pause):
                self._watcher.refresh(force=True)

    def update(self) -> None:
        """Poll the batch system now."""
        self._watcher.refresh(force=True)

    def wait(self, jobs, timeout: Optional[float] = None) -> Dict[str, JobInfo]:
        """Wait for Jobs, job ids, or lists of them; return their final infos."""
        return self._watcher.wait(_job_ids(jobs), timeout)


def get_cluster_environment() -> str:
    """Detect the batch system (slurm, torque or local), store it in :data:`MODE`, return it."""
    global MODE
    MODE = batch.detect(refresh=True)
    return MODE


def check_queue(qtype: Optional[str] = None) -> bool:
    """True when ``qtype`` (default: the detected one) can be used here."""
    system = batch.get(qtype)
    return batch.found(system.name, system.shell)


def wait(jobs, timeout: Optional[float] = None) -> Dict[str, JobInfo]:
    """Wait for Jobs or ids (of any batch system) to finish; ``timeout`` is a deadline
    for the whole call (TimeoutError after it), however many jobs there are."""
    items = jobs if isinstance(jobs, (list, tuple, set)) else [jobs]
    deadline = None if timeout is None else time.monotonic() + timeout
    result: Dict[str, JobInfo] = {}
    for item in items:
        if hasattr(item, 'wait') and hasattr(item, 'id'):
            item.wait(_left(deadline))
            result[str(item.id)] = item.info
        else:
            result.update(Queue().wait(item, _left(deadline)))
    return result

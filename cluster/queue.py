"""Watching batch queues: one :class:`Watcher` per batch system and user, and :class:`Queue`.

A watcher issues at most one status command for all tracked jobs per poll interval
(``queue_update`` in ``~/.cluster``), plus at most one accounting query for jobs that
have left the queue. Every thread and every :class:`Queue` of that system shares it.
A job that vanished from the queue is settled from its exit-code file.
"""
from __future__ import annotations

import contextlib
import getpass
import logging
import threading
import time
from typing import Dict, Iterable, List, Optional, Set, Union

from . import batch
from .batch import BatchSystem, JobInfo, State
from .errors import ClusterError, CommandError
from .script import JobFiles
from .storage import LocalStore

logger = logging.getLogger(__name__)

#: the detected batch system, set by :func:`get_cluster_environment`
MODE: Optional[str] = None
#: how many status polls in a row may fail before waiting raises
MAX_POLL_FAILURES = 5
#: polls a job may be missing from the queue, with no exit-code file, before it is failed
MISSING_POLLS = 3


def _setting(key: str, fallback: float) -> float:
    from . import config_file
    try:
        return float(config_file.get('queue', key))
    except (TypeError, ValueError, KeyError):
        return fallback


def read_exitcode(files: Optional[JobFiles], store: Optional[LocalStore] = None) -> Optional[int]:
    """The exit code a job script wrote, or None when there is none (yet)."""
    if files is None:
        return None
    store = store or LocalStore()
    text = store.read_text(files, store.target(files).exitcode)
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


class Watcher:
    """Tracks jobs of one batch system (and user) with one cached status call per interval."""

    def __init__(self, system: BatchSystem, user: Optional[str] = None,
                 interval: Optional[float] = None) -> None:
        self.system = system
        self.user = user or _user_of(system)
        self.interval = _setting('queue_update', 2.0) if interval is None else interval
        self.polls = 0
        self._files: Dict[str, tuple] = {}  # id -> (local JobFiles, store)
        self._info: Dict[str, JobInfo] = {}
        self._listing: Dict[str, JobInfo] = {}
        self._open_listed = 0             # unfinished jobs in the last listing
        self._unseen: Set[str] = set()    # tracked since, not yet in a listing
        self._missing: Dict[str, int] = {}
        self._polled_at = float('-inf')
        self._failures = 0
        self._lock = threading.Lock()       # guards the dictionaries
        self._poll_lock = threading.Lock()  # one poll at a time
        self._in_flight = 0                 # submit() returned, submit command running
        self._landed = threading.Condition(self._lock)

    def submission_started(self) -> None:
        """A job was handed to the submission thread: count it, and make the next poll
        wait for it, so that every job whose submit() returned is in what a poll sees."""
        with self._lock:
            self._in_flight += 1

    def submission_ended(self) -> None:
        """The submit command of such a job is done (tracked, or refused)."""
        with self._lock:
            self._in_flight -= 1
            self._landed.notify_all()

    def track(self, job_id: str, files: Optional[JobFiles] = None,
              store: Optional[LocalStore] = None) -> None:
        """Start following ``job_id``; ``files`` lets it be settled from its exit-code file."""
        with self._lock:
            self._files[job_id] = (files, store)
            self._unseen.add(job_id)
            self._info.setdefault(job_id, JobInfo(job_id, State.PENDING))

    def info(self, job_id: str) -> JobInfo:
        """The latest known state of a tracked job (refreshed when stale)."""
        self.refresh()
        with self._lock:
            return self._info.get(job_id) or JobInfo(job_id, State.UNKNOWN)

    def open_count(self) -> int:
        """Unfinished jobs of the user: the last listing's, plus the ones tracked since."""
        self.refresh()
        with self._lock:
            return self._open_listed + len(self._unseen) + self._in_flight

    @property
    def listing(self) -> Dict[str, JobInfo]:
        """Every job of this user the last poll saw."""
        self.refresh()
        with self._lock:
            return dict(self._listing)

    def refresh(self, force: bool = False) -> None:
        """Poll unless the last poll is younger than the interval; threads share one poll."""
        if not force and time.monotonic() - self._polled_at < self.interval:
            return
        started = time.monotonic()
        with self._poll_lock:
            if self._polled_at >= started or (
                    not force and time.monotonic() - self._polled_at < self.interval):
                return  # another thread polled while this one waited
            if not getattr(_THREAD, 'submitting', False):
                with self._lock:
                    self._landed.wait_for(lambda: self._in_flight == 0)
            delay = 0.0
            try:
                delay = self._poll()
            finally:
                # after a failed poll, the next one waits for the backoff, not the interval
                self._polled_at = time.monotonic() + delay

    def _backoff(self) -> float:
        """Seconds to wait before polling again after a failed poll."""
        return min(2.0 ** self._failures, 30.0)

    def _poll(self) -> float:
        """One status call; returns how much longer than the interval to wait after it."""
        try:
            listing = self.system.statuses(None, self.user)
        except CommandError as exc:
            self._failures += 1
            logger.warning('status poll of %s failed (%d in a row): %s',
                           self.system.name, self._failures, exc)
            if self._failures >= MAX_POLL_FAILURES:
                raise ClusterError(f'{self.system.name} status command failed '
                                   f'{self._failures} times in a row: {exc}') from exc
            return max(0.0, self._backoff() - self.interval)
        self._failures = 0
        self.polls += 1
        with self._lock:
            self._listing = listing
            self._open_listed = sum(1 for item in listing.values() if not item.state.final)
            self._unseen.difference_update(listing)
            open_ids = [i for i, info in self._info.items() if not info.state.final]
        settle: List[str] = []
        updates: Dict[str, JobInfo] = {}
        for job_id in open_ids:
            info = listing.get(job_id)
            if info is not None and info.state is State.UNKNOWN:
                info = self._from_file(job_id, info)  # ended, but its status is not known
            if info is None or info.state.final:
                settle.append(job_id)
                if info is not None:
                    updates[job_id] = info
            else:
                updates[job_id] = info
                self._missing.pop(job_id, None)
        updates.update(self._settle(settle, updates))
        with self._lock:
            self._info.update(updates)
            self._unseen.difference_update(i for i, item in updates.items() if item.state.final)
        return 0.0

    def _from_file(self, job_id: str, info: JobInfo) -> JobInfo:
        """A job the batch system shows in an unknown state is settled by its exit-code file."""
        code = read_exitcode(*self._files.get(job_id, (None, None)))
        if code is None:
            return info
        return JobInfo(job_id, State.COMPLETED if code == 0 else State.FAILED, exitcode=code,
                       name=info.name, user=info.user, node=info.node, start=info.start,
                       end=info.end)

    def _settle(self, job_ids: List[str], seen: Dict[str, JobInfo]) -> Dict[str, JobInfo]:
        """Final states for jobs that ended or left the queue: exit-code file, then accounting."""
        settled: Dict[str, JobInfo] = {}
        ask: List[str] = []
        for job_id in job_ids:
            code = read_exitcode(*self._files.get(job_id, (None, None)))
            info = seen.get(job_id)
            if info is not None and info.exitcode is None and code is not None:
                info.exitcode = code
                if info.state == State.COMPLETED and code != 0:
                    info.state = State.FAILED  # the script's own exit code has the last word
            if info is not None and info.exitcode is not None:
                settled[job_id] = info
            elif code is not None:
                state = State.COMPLETED if code == 0 else State.FAILED
                settled[job_id] = JobInfo(job_id, state, exitcode=code)
            else:
                ask.append(job_id)
        accounting = self.system.final_info(ask) if ask else {}
        for job_id in ask:
            info = accounting.get(job_id) or seen.get(job_id)
            if info is not None and info.state.final:
                settled[job_id] = info
                continue
            self._missing[job_id] = self._missing.get(job_id, 0) + 1
            if self._missing[job_id] >= MISSING_POLLS:
                settled[job_id] = JobInfo(job_id, State.FAILED,
                                          reason='left the queue without an exit code')
        return settled

    def wait(self, job_ids: Iterable[str], timeout: Optional[float] = None) -> Dict[str, JobInfo]:
        """Block until every listed job is final; return their infos."""
        ids = list(job_ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        for job_id in ids:
            if job_id not in self._info:
                self.track(job_id)
        while True:
            self.refresh()
            with self._lock:
                pending = [i for i in ids if not self._info[i].state.final]
            if not pending:
                with self._lock:
                    return {i: self._info[i] for i in ids}
            pause = max(0.0, self._polled_at + self.interval - time.monotonic())
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f'jobs {", ".join(pending)} not done after {timeout} s')
                pause = min(pause, left)
            if self.system.block(pending, pause):
                self.refresh(force=True)


_THREAD = threading.local()  # .submitting: this thread runs submit commands


@contextlib.contextmanager
def submitting():
    """Mark the current thread as a submission thread (its polls never wait for itself)."""
    _THREAD.submitting = True
    try:
        yield
    finally:
        _THREAD.submitting = False


_WATCHERS: Dict[tuple, Watcher] = {}
_WATCHERS_LOCK = threading.Lock()


def _user_of(system: BatchSystem) -> str:
    """The user whose jobs ``system`` shows: the remote login for a remote system."""
    return getattr(system, 'user', None) or getpass.getuser()


def watcher(system: BatchSystem, user: Optional[str] = None) -> Watcher:
    """The shared watcher of ``system`` for ``user`` (by default the current user, or the
    remote login of a remote system): one per batch system instance, so one per endpoint."""
    key = (id(system), user or _user_of(system))
    with _WATCHERS_LOCK:
        if key not in _WATCHERS:
            _WATCHERS[key] = Watcher(system, user)
        return _WATCHERS[key]


JobRef = Union[str, int, 'object']


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
        if system is None and (profile or remote):
            from . import remote as remote_module
            found = remote_module.lookup(profile, remote)
            system = found[1] if found else None
        if system is None:
            system = batch.get(qtype or batch.detect())
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
    return batch.get(qtype).available()


def wait(jobs, timeout: Optional[float] = None) -> Dict[str, JobInfo]:
    """Wait for Jobs or ids (of any batch system) to finish."""
    items = jobs if isinstance(jobs, (list, tuple, set)) else [jobs]
    result: Dict[str, JobInfo] = {}
    for item in items:
        if hasattr(item, 'wait') and hasattr(item, 'id'):
            item.wait(timeout)
            result[str(item.id)] = item.info
        else:
            result.update(Queue().wait(item, timeout))
    return result

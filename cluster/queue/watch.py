"""Watching batch queues: one :class:`Watcher` per batch system and user, and :class:`Queue`.

A watcher issues at most one status command for all tracked jobs per poll interval
(``queue_update`` in ``~/.cluster``), plus at most one accounting query for jobs that
have left the queue. Every thread and every :class:`Queue` of that system shares it.
When it starts following jobs after a time without any, the interval starts at
:data:`FIRST_POLL` and doubles after each poll up to ``queue_update`` (short jobs are
seen to end soon). A job that vanished from the queue is settled from its exit-code file, by the rule of
:mod:`cluster.queue.outcomes`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import getpass
import logging
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Dict, Iterable, List, Optional, Set

from ..batch import BatchSystem, JobInfo, State
from .outcomes import SIGNAL_CODES, ended as _ended, outcome, read_exitcode
from ..run.errors import ClusterError, CommandError
from ..script.files import JobFiles
from ..run.storage import Store
from .. import config_file

logger = logging.getLogger(__name__)

#: how many status polls in a row may fail before waiting raises
MAX_POLL_FAILURES = 5
#: polls a job may be missing from the queue, with no exit-code file, before it is failed
#: (only polls at the full interval count)
MISSING_POLLS = 3
#: seconds to the first poll after jobs are tracked by an idle watcher (then doubling)
FIRST_POLL = 0.25


def _setting(key: str, fallback: float) -> float:
    try:
        return float(config_file.get('queue', key))
    except (TypeError, ValueError, KeyError):
        return fallback


class Watcher:
    """Tracks jobs of one batch system (and user) with one cached status call per interval.

    A job is polled while it is open; once its outcome is decided (by :func:`outcome`)
    it leaves the poll set for good, and asking about it again costs nothing.
    """

    def __init__(self, system: BatchSystem, user: Optional[str] = None,
                 interval: Optional[float] = None) -> None:
        self.system = system
        self.user = user or _user_of(system)
        self.interval = _setting('queue_update', 2.0) if interval is None else interval
        self.polls = 0
        self._pace: Optional[float] = None  # the quicker interval of a start, else None
        self._files: Dict[str, tuple] = {}  # open id -> (local JobFiles, store)
        self._info: Dict[str, JobInfo] = {}
        self._open: Dict[str, None] = {}    # tracked ids not decided yet, in order
        self._listed: Set[str] = set()      # open ids some listing has shown
        self._listing: Dict[str, JobInfo] = {}
        self._decided: Dict[str, JobInfo] = {}  # outcomes of untracked listed jobs
        self._open_listed = 0             # unfinished jobs in the last listing
        self._unseen: Set[str] = set()    # tracked since, not yet in a listing
        self._missing: Dict[str, int] = {}
        self._polled_at = float('-inf')
        self._failures = 0
        self._lock = threading.Lock()       # guards the dictionaries
        self._poll_call: Optional[Future] = None  # the poll under way, in a thread of its own
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
              store: Optional[Store] = None, state: State = State.PENDING) -> None:
        """Start following ``job_id``; ``files`` lets it be settled from its exit-code file.
        Until a poll says otherwise it is in ``state`` (pending: it was just submitted)."""
        with self._lock:
            if job_id in self._info and job_id not in self._open:
                return  # decided already
            if files is not None or job_id not in self._files:
                self._files[job_id] = (files, store)
            if job_id not in self._open:
                if not self._open and self.interval > FIRST_POLL:
                    self._pace = FIRST_POLL  # idle until now: look again soon
                self._open[job_id] = None
                self._unseen.add(job_id)
                self.system.follow(job_id)
            self._info.setdefault(job_id, JobInfo(job_id, state))

    @property
    def gap(self) -> float:
        """How many seconds apart the polls are now (``interval``, or fewer while the pace
        starts up)."""
        return self.interval if self._pace is None else min(self._pace, self.interval)

    def open_ids(self) -> List[str]:
        """The tracked jobs whose outcome is not decided yet (what a poll looks at)."""
        with self._lock:
            return list(self._open)

    def info(self, job_id: str) -> JobInfo:
        """The latest known state of a tracked job (refreshed when stale and still open)."""
        with self._lock:
            if job_id in self._info and job_id not in self._open:
                return self._info[job_id]
        self.refresh()
        with self._lock:
            return self._info.get(job_id) or JobInfo(job_id, State.UNKNOWN)

    def known(self, job_id: str) -> Optional[JobInfo]:
        """What the last poll knows of a tracked job, without polling (None: nothing)."""
        with self._lock:
            return self._info.get(job_id)

    def open_count(self) -> int:
        """Unfinished jobs of the user: the last listing's, plus the ones tracked since."""
        self.refresh()
        with self._lock:
            return self._open_listed + len(self._unseen) + self._in_flight

    @property
    def listing(self) -> Dict[str, JobInfo]:
        """Every job of this user the last poll saw; ended ones with their outcome."""
        self.refresh()
        with self._lock:
            return dict(self._listing)

    def refresh(self, force: bool = False, deadline: Optional[float] = None) -> None:
        """Poll unless the last poll is younger than the interval; threads share one poll.

        The status command runs in a thread of its own, so that with ``deadline`` (a
        ``time.monotonic()`` value) the caller waits no longer than that, even behind a
        status command that hangs: its answer is kept when it comes. A poll's error
        reaches every caller waiting for it.
        """
        if not force and time.monotonic() - self._polled_at < self.gap:
            return
        asked = time.monotonic()
        if not getattr(_THREAD, 'submitting', False):
            with self._lock:
                self._landed.wait_for(lambda: self._in_flight == 0, _left(deadline))
        while True:
            with self._lock:
                if self._polled_at >= asked or (
                        not force and time.monotonic() - self._polled_at < self.gap):
                    return  # a poll that ended since the call answers it
                call = self._poll_call
                if call is None or call.done():
                    call = self._poll_call = Future()
                    threading.Thread(target=self._poll_into, args=(call,), daemon=True,
                                     name=f'cluster-poll-{self.system.name}').start()
            try:
                call.result(timeout=_left(deadline))
            except FutureTimeout:
                return  # the poll goes on; the caller's deadline has come

    def _poll_into(self, call: Future) -> None:
        """Run one poll and settle ``call`` with its outcome (in the poll's thread)."""
        try:
            delay = self._poll()
        except BaseException as exc:  # handed to every waiting caller
            self._polled_at = time.monotonic()
            call.set_exception(exc)
        else:
            # after a failed status command, the next poll waits for the backoff
            self._polled_at = time.monotonic() + delay
            if self._pace is not None:
                self._pace = None if self._pace * 2 >= self.interval else self._pace * 2
            call.set_result(None)

    def _still_unknown(self, job_ids: List[str], reason: str) -> None:
        """Say why the jobs no poll has seen yet (attached ones) are still unknown."""
        with self._lock:
            for info in filter(None, map(self._info.get, job_ids)):
                if info.state is State.UNKNOWN:
                    self._info[info.id] = dataclasses.replace(info, reason=reason)

    def _backoff(self) -> float:
        """Seconds to wait before polling again after a failed poll."""
        return min(2.0 ** self._failures, 30.0)

    def _poll(self) -> float:
        """One status call; returns how much longer than the interval to wait after it.

        Only jobs tracked before the call are judged by its answer."""
        with self._lock:
            open_ids = list(self._open)
        try:
            listing = self.system.statuses(None, self.user)
        except CommandError as exc:
            self._failures += 1
            self._still_unknown(open_ids, f'its status could not be asked: {exc}')
            logger.warning('status poll of %s failed (%d in a row): %s',
                           self.system.name, self._failures, exc)
            if self._failures >= MAX_POLL_FAILURES:
                raise ClusterError(f'{self.system.name} status command failed '
                                   f'{self._failures} times in a row: {exc}') from exc
            return max(0.0, self._backoff() - self.gap)
        self._failures = 0
        self.polls += 1
        with self._lock:
            self._unseen.difference_update(listing)
            open_ids = [i for i in open_ids if i in self._open]
            self._listed.update(i for i in open_ids if i in listing)
            strangers = [i for i, item in listing.items() if i not in self._info
                         and i not in self._decided and _ended(item) and (
                             item.state is State.UNKNOWN or item.exitcode is None)]
        settle: List[str] = []
        updates: Dict[str, JobInfo] = {}
        for job_id in open_ids:
            info = listing.get(job_id)
            if info is None or _ended(info):
                settle.append(job_id)
            else:
                updates[job_id] = info
                self._missing.pop(job_id, None)
        decided = self._settle(settle + strangers, listing, set(strangers))
        updates.update((i, v) for i, v in decided.items() if i not in strangers)
        # listed as over but not decided yet (e.g. Torque's C without an exit status):
        # shown as the scheduler lists it, and still polled
        updates.update((i, listing[i]) for i in settle if i not in decided and i in listing
                       and not listing[i].state.final)
        with self._lock:
            for job_id, item in updates.items():
                self._info[job_id] = item
                if item.state.final or job_id in decided:
                    self._forget(job_id)
            self._decided = {i: v for i, v in self._decided.items() if i in listing}
            self._decided.update((i, v) for i, v in decided.items() if i in strangers)
            self._listing = {i: self._info.get(i) if i in self._info and i not in self._open
                             else self._decided.get(i, item) for i, item in listing.items()}
            self._open_listed = sum(1 for item in self._listing.values() if not _ended(item))
        return 0.0

    def _forget(self, job_id: str) -> None:
        """Take a decided job out of the poll set (lock held)."""
        self._open.pop(job_id, None)
        self._unseen.discard(job_id)
        self._listed.discard(job_id)
        self._files.pop(job_id, None)
        self._missing.pop(job_id, None)

    def _settle(self, job_ids: List[str], seen: Dict[str, JobInfo],
                strangers: Set[str]) -> Dict[str, JobInfo]:
        """Outcomes for jobs that ended or left the queue: exit-code file, then accounting.

        Accounting is asked (once, for all of them) for a job whose outcome or code
        neither the listing nor its file gives, or that left the queue after a signal.
        ``strangers`` are listed jobs this watcher does not track: decided when possible,
        never failed for being missing.
        """
        settled: Dict[str, JobInfo] = {}
        codes: Dict[str, Optional[int]] = {}
        ask: List[str] = []
        for job_id in job_ids:
            code = codes[job_id] = read_exitcode(*self._files.get(job_id, (None, None)))
            info = seen.get(job_id)
            decided = outcome(job_id, info, code)
            if decided is None or decided.exitcode is None or self._killed(info, code):
                ask.append(job_id)
            else:
                settled[job_id] = decided
        accounting = self.system.final_info(ask) if ask else {}
        for job_id in ask:
            found = accounting.get(job_id)
            if found is not None and not found.state.final:
                found = None  # accounting has not caught up yet
            if found is None and self._killed(seen.get(job_id), codes[job_id]) and \
                    self._missed(job_id) < MISSING_POLLS:
                continue  # killed: give the accounting a few polls to say by whom
            decided = outcome(job_id, found or seen.get(job_id), codes[job_id])
            if decided is not None:
                settled[job_id] = decided
            elif job_id in strangers or job_id in seen:
                continue  # still listed: its outcome may show later
            elif job_id not in self._listed and self._files.get(job_id, (None,))[0] is None:
                settled[job_id] = JobInfo(job_id, State.UNKNOWN, reason=(
                    f'no {self.system.name} job {job_id} is known: it is neither in the '
                    f'queue nor in the accounting'))
            elif self._missed(job_id) >= MISSING_POLLS:
                settled[job_id] = JobInfo(job_id, State.FAILED,
                                          reason='left the queue without an exit code')
        return settled

    def _missed(self, job_id: str) -> int:
        """Count one more poll that missed the job (not while the pace starts up)."""
        self._missing[job_id] = self._missing.get(job_id, 0) + int(self._pace is None)
        return self._missing[job_id]

    @staticmethod
    def _killed(seen: Optional[JobInfo], code: Optional[int]) -> bool:
        """A signal ended the script, and the listing does not say why (cancelled,
        timeout...): only the accounting can."""
        return (code is not None and code > SIGNAL_CODES
                and (seen is None or seen.state is State.UNKNOWN))

    def wait(self, job_ids: Iterable[str], timeout: Optional[float] = None) -> Dict[str, JobInfo]:
        """Block until every listed job's outcome is decided; return their infos.

        ``timeout`` is a deadline for the whole call (TimeoutError after it). A job no
        batch system knows comes back UNKNOWN, with a reason.
        """
        ids = list(job_ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        for job_id in ids:
            self.track(job_id)  # no-op for tracked and decided ones
        while True:
            with self._lock:
                pending = [i for i in ids if i in self._open]
            if not pending:
                with self._lock:
                    return {i: self._info[i] for i in ids}
            left = _left(deadline)
            if left is not None and left <= 0:
                raise TimeoutError(f'jobs {", ".join(pending)} not done after {timeout} s')
            self.refresh(deadline=deadline)
            with self._lock:
                pending = [i for i in ids if i in self._open]
            if not pending:
                continue
            pause = max(0.0, self._polled_at + self.gap - time.monotonic())
            left = _left(deadline)
            if left is not None:
                pause = min(pause, left)
            if self.system.block(pending, pause):
                self.refresh(force=True, deadline=deadline)


def _left(deadline: Optional[float], none: Optional[float] = None) -> Optional[float]:
    """Seconds until ``deadline`` (at least 0), or ``none`` when there is no deadline."""
    return none if deadline is None else max(0.0, deadline - time.monotonic())


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

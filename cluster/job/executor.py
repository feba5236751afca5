""":class:`Executor`: a ``concurrent.futures.Executor`` whose calls run as tasks of
job arrays on a batch system (one job per task where it has no arrays, JobQueue jobs in
local mode), many calls per task.

Calls given to :meth:`Executor.submit` within :data:`GATHER_WINDOW` seconds of the first
one not yet sent are gathered into one array; :meth:`Executor.map` sends its calls at
once. See ``docs/executor.rst``.
"""
from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

from .. import config_file
from ..batch import BatchSystem
from ..run.errors import JobError
from ..run.place import place
from ..run.storage import remove_local
from . import arrays, chunks, records, requeue
from .collect import Collector
from .futures import JobFuture, PickleCheck, Task, has_futures, replace_futures
from .prepare import default_name, merged_options

logger = logging.getLogger(__name__)

#: seconds a submit waits for more submits to gather into the same array
GATHER_WINDOW = 0.05
#: the slots a batch system is assumed to give at once when neither ``throttle`` nor the
#: system (Slurm: the CPUs of its default partition) says
BATCH_SLOTS = 4
#: tasks per slot that ``chunksize=None`` aims at in local mode (no start-up per task)
TASKS_PER_SLOT = 2
#: ... and on a batch system, where every task costs a pass of the scheduler (about a
#: second on Slurm, far more behind other users' jobs) and an interpreter's start-up
BATCH_TASKS_PER_SLOT = 1


class Executor(concurrent.futures.Executor):
    """Run calls as batch jobs: ``with Executor(qtype='slurm', cores=1) as ex: ex.map(f, xs)``.

    ``options`` are the job keywords (``cores``, ``mem``, ``time``, ``partition``...);
    ``throttle`` caps the array tasks that run at once (Slurm: each array ``%throttle``,
    and each waits for the executor's array before it); ``progress`` shows a bar
    (default: the ``progress`` setting of ``[executor]`` in ~/.cluster).
    """

    def __init__(self, qtype: Optional[str] = None, profile: Optional[str] = None,
                 remote: Any = None, throttle: Optional[int] = None,
                 progress: Optional[bool] = None, **options: Any) -> None:
        if throttle is not None and (not isinstance(throttle, int) or throttle < 1):
            raise JobError(f'throttle must be a whole number >= 1, not {throttle!r}')
        self.options = merged_options(profile, options)  # checked: bad keywords fail here
        self.store, self.system = place(qtype, profile, remote)
        requeue.check_arrays(self.options, self.system)  # a requeued task reruns its calls
        self.qtype, self.profile, self.remote = self.system.name, profile, remote
        self.throttle = throttle
        self._raw = dict(options)
        #: the system runs calls without scripts (local mode)
        self._by_call = type(self.system).submit_call is not BatchSystem.submit_call
        if self._by_call:
            self.system.slots()  # starts the local queue (its fresh workers: on a submit)
        if progress is None:
            progress = bool(config_file.get('executor', 'progress'))
        self._check = PickleCheck(self.store.ships_functions_by_value)
        self._collector = Collector(self.system, progress)
        self._pending: List[tuple] = []
        self._lock = threading.RLock()
        self._flushing = threading.Lock()
        self._timer: Optional[threading.Timer] = None
        self._shutdown = False
        self.jobs: List[Any] = []          # the ArrayJobs submitted
        self.claimed: List[Any] = []       # local mode's file sets
        self._tasks: List[Task] = []

    # what arrays.py asks ----------------------------------------------------------------
    def job_args(self, tasks: List[Task]) -> Dict[str, Any]:
        return dict(self._raw, qtype=self.qtype, profile=self.profile, remote=self.remote,
                    name=self.name_for(tasks))

    def name_for(self, tasks: List[Task]) -> str:
        return self._raw.get('name') or tasks[0].name

    @property
    def slots(self) -> int:
        """How many tasks are assumed to run at once (``throttle``, else what the system
        says, on a batch system divided by ``cores``, else ``BATCH_SLOTS``, 4)."""
        if self.throttle:
            return self.throttle
        found = self.system.slots()
        if found and not self._by_call:
            found = max(1, found // max(1, int(self.options.get('cores') or 1)))
        return found or BATCH_SLOTS

    def chunksize_for(self, calls: int) -> int:
        """``chunksize=None``: calls per task so that there are at most TASKS_PER_SLOT
        (batch systems: BATCH_TASKS_PER_SLOT) x :attr:`slots` tasks."""
        per_slot = TASKS_PER_SLOT if self._by_call else BATCH_TASKS_PER_SLOT
        return max(1, math.ceil(calls / (per_slot * self.slots)))

    # submitting -------------------------------------------------------------------------
    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> JobFuture:
        """Run ``fn(*args, **kwargs)`` as part of an array task; return its JobFuture."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError('cannot submit after shutdown')
            future = self._prepare(fn, args, kwargs)
            self._pending.append(future)
            if self._by_call and not self._tasks and self._timer is None:
                self.system.job_queue().warm()  # they start while calls are gathered
            if self._timer is None:
                self._timer = threading.Timer(GATHER_WINDOW, self._flush)
                self._timer.daemon = True
                self._timer.start()
        return future

    def _prepare(self, fn: Callable, args: tuple, kwargs: dict,
                 name: Optional[str] = None, checked: bool = False) -> JobFuture:
        """The future of one call; ``checked``: its arguments are known to pickle and to
        hold no future (:meth:`PickleCheck.check_all`)."""
        if not callable(fn):
            raise JobError(f'{fn!r} is not callable')
        found: List[JobFuture] = []
        if not checked:
            if has_futures(args) or has_futures(kwargs):
                self._flush()  # a future still gathering gets its task (and id) first
                args, kwargs = replace_futures((args, kwargs), found)
            self._check.check(fn, args, kwargs)
        future = JobFuture(name or default_name(fn), self.system)
        future.call = (fn, args, kwargs)
        future.after = found
        future.flush = self._flush
        return future

    def _flush(self) -> None:
        """Send the gathered calls: tasks of the automatic size, in arrays."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, []
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            if pending:
                self._send(pending, self.chunksize_for(len(pending)))

    def _send(self, futures: List[JobFuture], chunksize: int) -> None:
        tasks = []
        for start in range(0, len(futures), chunksize):
            part = futures[start:start + chunksize]
            task = Task(len(tasks), part, part[0].name)
            for position, future in enumerate(part):
                future.position = position
            task.calls = [f.call for f in part]
            tasks.append(task)
        deps = list({id(d.job): d.job for f in futures for d in f.after}.values())
        try:
            if self._by_call:
                arrays.submit_calls(tasks, deps, self)
            else:
                self.jobs += arrays.submit_batch(tasks, deps, self)
        except BaseException as exc:
            for task in tasks:
                if not task._submitted.is_set():
                    task.landed(None, exc)
            if not isinstance(exc, Exception):
                raise
        self._tasks += tasks
        self._collector.add(tasks)

    def map(self, fn: Callable, *iterables: Iterable, timeout: Optional[float] = None,
            chunksize: Optional[int] = None) -> Iterator[Any]:
        """Results of ``fn`` over the iterables, in order, as they come; a call that raised
        re-raises at its position. ``timeout`` is a deadline from this call;
        ``chunksize`` calls run per task (None: :meth:`chunksize_for`)."""
        if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
            raise ValueError(f'chunksize must be a whole number >= 1, not {chunksize!r}')
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._shutdown:
                raise RuntimeError('cannot map after shutdown')
            calls = list(zip(*iterables))
            name = default_name(fn) if callable(fn) else None
            checked = callable(fn) and self._check.check_all(fn, calls)
            forked = checked and self._by_call  # local, no future among the arguments
            if not forked:
                futures = [self._prepare(fn, args, {}, name, checked) for args in calls]
        self._flush()
        if forked:
            return self._map_forked(fn, calls, chunksize, name, deadline)
        with self._flushing:
            if futures:
                self._send(futures, chunksize or self.chunksize_for(len(futures)))
        return _results(futures, deadline)

    def _map_forked(self, fn: Callable, calls: List[tuple], chunksize: Optional[int],
                    name: str, deadline: Optional[float]) -> Iterator[Any]:
        """Local ``map``: one forked JobQueue job and one future per chunk
        (:mod:`cluster.job.chunks`)."""
        with self._lock:
            tasks = chunks.submit_chunks(self, fn, calls, chunksize or self.chunksize_for(
                len(calls)), name)
            self._tasks += tasks
        if self._collector.progress.on:
            self._collector.add(tasks)
        return chunks.results([t.futures[0] for t in tasks], deadline, time.monotonic)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more submits; send what is gathered; with ``cancel_futures`` cancel the calls
        not running yet (and their tasks); with ``wait`` block until all are done, then
        remove the files of the finished tasks."""
        with self._lock:
            self._shutdown = True
        self._flush()
        if cancel_futures:
            for task in self._tasks:
                for future in task.futures:
                    future.cancel()
        if wait:
            concurrent.futures.wait([f for t in self._tasks for f in t.futures])
            self.clean()
        self._collector.stop()

    def clean(self) -> None:
        """Remove the files of this executor's finished tasks (and nothing else)."""
        done = [t for t in self._tasks if t.settled or t._error is not None]
        for job in self.jobs:
            if all(t in done for t in job.tasks):
                paths = arrays.task_files(job)
                paths += list(arrays.node_files(job.target.base))
                paths += job.target.scripts() + job.target.outputs()
                job.store.remove(job.files, paths)
                remove_local({job.store.local(job.files, p) for p in paths}
                             | {s.path for s in job.scripts})
                records.cleaned(job)  # its record goes with its files
        for files in self.claimed:
            tasks = [t for t in done if t.files == files]
            remove_local([p for t in tasks for p in t.paths] + [files.submission])

    def __repr__(self) -> str:
        return f'<Executor {self.qtype} tasks={len(self._tasks)}>'


def _results(futures: List[JobFuture], deadline: Optional[float]) -> Iterator[Any]:
    try:
        for future in futures:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            yield future.result(left)
    finally:
        for future in futures:
            future.cancel()

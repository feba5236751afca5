"""The JobQueue's scheduling policy: which job starts when, and how jobs are settled.

No I/O and no lock of its own: the queue's lock is held around every call.

* The waiting line holds the jobs whose dependencies all completed, in id order. The head
  starts when its cores fit. While the head is blocked for cores, a later job that fits
  may start in its place ("backfill"), at most ``cores`` times per head job; after that
  the head holds a reservation and nothing else starts before it. This bound is what rules
  out starvation: the head waits at most for the running jobs and ``cores`` backfilled
  ones. Within the bound, the queue learns each function's last run time (per function
  pickle and core count) and, when it knows them, refuses a backfill that would end after
  the head's expected start (EASY backfill with learned estimates), unless it only uses
  cores the head will not need. Jobs with no known run time backfill freely within the
  bound.
* Dependents of a job that did not complete are CANCELLED with the reason ``dependency N
  failed`` (or ``cancelled``, ...) and never run, as Slurm and Torque cancel them.
"""
from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..batch import State

if TYPE_CHECKING:
    from .worker import WorkerProcess


class Job:
    """One job of a :class:`JobQueue`; read its fields, the scheduler thread writes them.

    The underscored fields are the scheduler's bookkeeping.
    """
    __slots__ = ('id', 'name', 'cores', 'dependencies', 'state', 'exitcode', 'start', 'end',
                 'reason', 'submitted', 'time_limit', '_payload', '_kind', '_result', '_value', '_unmet',
                 '_dependents', '_bypassed', '_runtime_key', '_call', '_on_done')

    def __init__(self, job_id: int, name: Optional[str], cores: int,
                 dependencies: List[int], payload: Optional[bytes]) -> None:
        self.id = job_id
        self.name = name or f'job{job_id}'
        self.cores = cores
        self.dependencies = dependencies
        self.state = State.PENDING
        self.exitcode: Optional[int] = None
        self.submitted = time.time()
        self.start: Optional[float] = None
        self.end: Optional[float] = None
        self.reason: Optional[str] = None
        self.time_limit: Optional[float] = None  # seconds from its start; then it is killed
        self._payload = payload
        self._kind = b''      # b'o'/b'd' result pickle, b'e' error, b'' none
        self._result: Optional[bytes] = None
        self._value: Any = _NOTHING
        self._unmet = 0
        self._dependents: Optional[List[int]] = None
        self._bypassed = 0
        self._runtime_key: Any = None  # (function pickle hash, cores): learned run time
        self._call: Optional[tuple] = None  # a forked job's (function, args, kwargs, cwd)
        self._on_done: Optional[Callable[['Job'], None]] = None

    def __repr__(self) -> str:
        return (f'Job(id={self.id}, name={self.name!r}, state={self.state.value}, '
                f'cores={self.cores}, exitcode={self.exitcode}, reason={self.reason!r})')


_NOTHING = object()


class Schedule:
    """The waiting line, the free cores and the learned run times of one queue.

    ``jobs`` is the queue's own dict of every job by id; ``finished`` arguments collect
    the jobs settled by a call, in order, so the caller can report them.
    """

    def __init__(self, cores: int, jobs: Dict[int, 'Job']) -> None:
        self.cores = cores
        self.jobs = jobs
        self.ready: Dict[int, List[int]] = {}  # cores -> heap of ids whose deps completed
        self.free = cores
        self.runtimes: Dict[Any, float] = {}  # last run time per (function, cores)
        self.unfinished = 0
        self.cancel_ids: set = set()  # cancels asked for and not yet carried out
        self.timeout_ids: set = set()  # jobs killed at their time limit, not yet settled

    def register(self, job: 'Job') -> None:
        """Record a job that :meth:`admit` will see later."""
        self.jobs[job.id] = job
        self.unfinished += 1

    def admit(self, job: 'Job', finished: List['Job']) -> None:
        """Resolve a new job's dependencies: line it up, wait for them, or fail it."""
        if job._payload is None:  # could not be pickled
            self.finish(job, State.FAILED, None, job.reason, finished)
            return
        for dep_id in job.dependencies:
            dep = self.jobs[dep_id]
            if dep.state is State.COMPLETED:
                continue
            if dep.state.final:
                why = 'failed' if dep.state is State.FAILED else dep.state.value
                self.finish(job, State.CANCELLED, None, f'dependency {dep_id} {why}',
                            finished)
                return
            if dep._dependents is None:
                dep._dependents = []
            dep._dependents.append(job.id)
            job._unmet += 1
        if job._unmet == 0:
            heapq.heappush(self.ready.setdefault(job.cores, []), job.id)

    def take_cancels(self, finished: List['Job']) -> List['Job']:
        """Cancel the asked-for jobs that do not run; return the running ones.

        Those stay asked for: their workers must be killed, and the worker's death
        settles the job as CANCELLED (see :meth:`finish_killed`).
        """
        running = []
        for job_id in sorted(self.cancel_ids):
            job = self.jobs[job_id]
            if job.state is State.RUNNING:
                running.append(job)
                continue
            self.cancel_ids.discard(job_id)
            if not job.state.final:
                self._remove_ready(job)
                self.finish(job, State.CANCELLED, None, 'cancelled', finished)
        return running

    def start_ready(self, workers: Sequence['WorkerProcess'],
                    choose: Optional[Callable[['Job'], Any]] = None
                    ) -> List[Tuple['WorkerProcess', 'Job']]:
        """Give idle workers what may start now: the head of the line, else a backfill.

        ``choose(job)`` names the worker for a job (None: none can take it now; default:
        the first idle one). Marks those jobs RUNNING and returns (worker, job) pairs.
        """
        starts = []
        now = time.time()
        while self.free > 0:
            tops = sorted((heap[0], size) for size, heap in self.ready.items() if heap)
            if not tops:
                break
            head = self.jobs[tops[0][0]]
            if head.cores <= self.free:
                pick: Optional['Job'] = head
            else:
                pick = self._backfill(head, tops, workers, now)
                if pick is None:
                    break
                head._bypassed += 1
            if choose is None:
                worker = next((w for w in workers if w.job is None), None)
            else:
                worker = choose(pick)
            if worker is None:
                break
            heapq.heappop(self.ready[pick.cores])
            pick.state, pick.start = State.RUNNING, now
            self.free -= pick.cores
            worker.job = pick
            starts.append((worker, pick))
        return starts

    def _backfill(self, head: 'Job', tops: List[Tuple[int, int]],
                  workers: Sequence['WorkerProcess'], now: float) -> Optional['Job']:
        """The job to start in the blocked head's place, or None (the head's reservation)."""
        if head._bypassed >= self.cores:
            return None
        shadow, extra = self._shadow(head, workers, now)
        for job_id, size in tops[1:]:
            if size > self.free:
                continue
            job = self.jobs[job_id]
            if shadow is None or size <= extra:
                return job
            estimate = self.runtimes.get(job._runtime_key)
            if estimate is None or now + estimate <= shadow + 0.01 + 0.05 * estimate:
                return job
        return None

    def _shadow(self, head: 'Job', workers: Sequence['WorkerProcess'],
                now: float) -> Tuple[Optional[float], int]:
        """When the head could start, by learned run times, and the cores it leaves spare.

        (None, 0) when a running job's run time is not known yet.
        """
        ends = []
        for worker in workers:
            job = worker.job
            if job is not None:
                estimate = self.runtimes.get(job._runtime_key)
                if estimate is None:
                    return None, 0
                ends.append((max(now, job.start + estimate), job.cores))
        available = self.free
        for end, cores in sorted(ends):
            available += cores
            if available >= head.cores:
                return end, available - head.cores
        return None, 0

    def _remove_ready(self, job: 'Job') -> None:
        heap = self.ready.get(job.cores)
        if heap and job.id in heap:
            heap.remove(job.id)
            heapq.heapify(heap)

    def finish(self, job: 'Job', state: State, exitcode: Optional[int],
               reason: Optional[str], finished: List['Job']) -> None:
        """Settle a job and release or fail its dependents."""
        if job.state is State.RUNNING:
            self.free += job.cores
        job.state, job.exitcode, job.end = state, exitcode, time.time()
        if state is State.COMPLETED and job.start is not None:
            self.runtimes[job._runtime_key] = job.end - job.start
        job.reason = reason
        job._payload = job._call = None
        finished.append(job)
        self.unfinished -= 1
        dependents, job._dependents = job._dependents or [], None
        for dep_id in dependents:
            dependent = self.jobs[dep_id]
            if dependent.state.final:
                continue
            if state is State.COMPLETED:
                dependent._unmet -= 1
                if dependent._unmet == 0:
                    heapq.heappush(self.ready.setdefault(dependent.cores, []), dependent.id)
            else:
                self._remove_ready(dependent)
                why = 'failed' if state is State.FAILED else state.value
                self.finish(dependent, State.CANCELLED, None, f'dependency {job.id} {why}',
                            finished)

    def finish_killed(self, job: 'Job', exitcode: Optional[int], reason: str,
                      finished: List['Job']) -> None:
        """Settle a job whose worker died: CANCELLED when asked for, TIMEOUT when killed at
        its time limit, else FAILED."""
        timed_out = job.id in self.timeout_ids
        self.timeout_ids.discard(job.id)
        if job.id in self.cancel_ids:
            self.cancel_ids.discard(job.id)
            self.finish(job, State.CANCELLED, exitcode, 'cancelled', finished)
        elif timed_out:
            self.finish(job, State.TIMEOUT, exitcode,
                        f'time limit of {job.time_limit:g} s reached', finished)
        else:
            self.finish(job, State.FAILED, exitcode, reason, finished)

    def fail_waiting(self, reason: str, finished: List['Job']) -> None:
        """Fail every unfinished job that does not run."""
        for job in list(self.jobs.values()):
            if not job.state.final and job.state is not State.RUNNING:
                self.finish(job, State.FAILED, None, reason, finished)
        self.ready.clear()

    def fail_running(self, reason: str, finished: List['Job']) -> None:
        """Fail the running jobs (their workers are gone) and free every core."""
        for job in self.jobs.values():
            if job.state is State.RUNNING:
                self.finish(job, State.FAILED, None, reason, finished)
        self.free = self.cores

    def fail_unfinished(self, reason: str, finished: List['Job']) -> None:
        """Fail every unfinished job and free every core."""
        for job in list(self.jobs.values()):
            if not job.state.final:
                self.finish(job, State.FAILED, None, reason, finished)
        self.ready.clear()
        self.free = self.cores

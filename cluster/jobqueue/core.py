"""JobQueue (and Job, from :mod:`cluster.jobqueue.scheduling`): the queue callers use; see
:mod:`cluster.jobqueue` for the behaviour."""
from __future__ import annotations

import atexit
import logging
import os
import pickle
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import psutil

from ..batch import State
from ..run.errors import JobError
from .dispatch import Dispatcher
from .forked import encode_id
from .scheduling import _NOTHING, Job, Schedule
from .worker import current_dir, encode_task, loads

logger = logging.getLogger(__name__)

__all__ = ['JobQueue', 'Job', 'run_dispatcher', 'job_runner']

JobIds = Union[int, str, Iterable[Union[int, str]], None]




def run_dispatcher(jobqueue: 'JobQueue', outputs: Callable[[Job], None],
                   cores: Optional[int] = None, jobno: Optional[int] = None) -> None:
    """The scheduler loop, run in ``jobqueue``'s thread until the queue stops.

    Takes new jobs from ``jobqueue``'s inbox, starts them on workers when their
    dependencies completed and their cores fit, and calls ``outputs(job)`` for every job
    that reaches a final state (the queue passes its notifier). ``cores`` defaults to the
    queue's; ``jobno`` is the first job id expected (kept from the seed; used in the log).
    """
    dispatcher: Optional[Dispatcher] = None
    try:  # starting the workers may fail too (no fork, no fds): waiters must hear of it
        dispatcher = Dispatcher(jobqueue, outputs, cores or jobqueue.cores)
        jobqueue._dispatcher = dispatcher
        logger.debug('dispatcher started with %d cores (first job %s)', dispatcher.cores, jobno)
        dispatcher.run()
    except BaseException as exc:  # noqa: B902 - never leave waiters hanging
        logger.exception('job dispatcher crashed')
        jobqueue._fail_all(f'the scheduler crashed: {exc!r}')
        raise
    finally:
        if dispatcher is not None:
            dispatcher.stop_workers()


#: the seed's name of :func:`run_dispatcher`
job_runner = run_dispatcher


class JobQueue:
    """A local queue: ``add`` functions with dependencies and core counts, ``get`` results.

    Thread-safe. ``cores`` defaults to every core of the machine.
    """

    def __init__(self, cores: Optional[int] = None) -> None:
        if cores is None:
            cores = psutil.cpu_count() or 1
        if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
            raise JobError(f'cores must be a positive integer, not {cores!r}')
        self.cores = cores
        self._pid = os.getpid()  # a forked child must not shut down the parent's workers
        self.jobs: Dict[int, Job] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._next_id = 1
        self._inbox: List[Union[Job, threading.Event]] = []
        self._schedule = Schedule(cores, self.jobs)
        self._woken = False
        self._warm = False
        self._stopping = False
        self._broken: Optional[str] = None
        self.closed = False
        self._wake_r, self._wake_w = -1, -1  # the scheduler's wake pipe, open while it runs
        self._thread: Optional[threading.Thread] = None
        self._dispatcher: Optional[Dispatcher] = None
        self._start()
        atexit.register(self.shutdown)

    # ---------------------------------------------------------------- public API

    def add(self, function: Callable, args: Optional[Sequence] = None,
            kwargs: Optional[dict] = None, dependencies: JobIds = None, cores: int = 1,
            name: Optional[str] = None, time_limit: Optional[float] = None,
            fork: bool = False, on_done: Optional[Callable[[Job], None]] = None) -> int:
        """Queue ``function(*args, **kwargs)`` and return its job id (1, 2, ...).

        It starts once every job in ``dependencies`` completed and ``cores`` are free.
        A payload that cannot be pickled gives a FAILED job whose ``get`` says why. A job
        still running ``time_limit`` seconds after its start is killed and ends TIMEOUT.
        ``fork``: run it in a forked worker (:mod:`cluster.jobqueue.forked`), from memory,
        nothing pickled but its value (a ``bytes`` value comes back as it is).
        ``on_done(job)`` is called in the scheduler thread once the job is final.
        """
        self._check_job(function, cores, time_limit)
        if args is not None and not isinstance(args, (tuple, list)):
            raise JobError(f'args must be a tuple or list, not {type(args).__name__}')
        if kwargs is not None and not isinstance(kwargs, dict):
            raise JobError(f'kwargs must be a dict, not {type(kwargs).__name__}')
        deps = self._dependency_ids(dependencies)
        problem = None
        if fork:
            payload, fn_hash = b'', id(function)
        else:
            try:
                payload, fn_hash = encode_task(function, args or (), kwargs or {},
                                               current_dir())
            except Exception as exc:
                payload, fn_hash = None, 0
                problem = f'cannot pickle the function or its arguments: {exc!r}'
        with self._lock:
            if self.closed:
                raise JobError('this JobQueue is shut down; restart() it first')
            if self._broken:
                raise JobError(f'this JobQueue is broken: {self._broken}')
            job_id = self._next_id
            for dep in deps:
                if dep not in self.jobs:
                    raise JobError(
                        f'unknown dependency id {dep}: this queue has jobs 1 to {job_id - 1} '
                        f'and the new job would be {job_id}; a job may depend only on jobs '
                        f'added before it, so cycles cannot form')
            self._next_id += 1
            job = Job(job_id, name, cores, deps, payload)
            job._runtime_key = (fn_hash, cores)
            job._on_done = on_done
            if fork:
                job._payload = encode_id(job_id)
                job._call = (function, tuple(args or ()), dict(kwargs or {}), current_dir())
            job.time_limit = time_limit
            if problem:
                job.reason = problem
            self._schedule.register(job)
            self._post(job)
        return job_id

    def add_forked(self, function: Callable, arguments: Sequence[tuple], cores: int = 1,
                   names: Optional[Sequence[str]] = None, time_limit: Optional[float] = None,
                   on_done: Optional[Sequence[Callable[[Job], None]]] = None) -> List[int]:
        """Queue ``function(*args)`` for each tuple of ``arguments`` at once, each a job
        with ``fork=True`` (see :meth:`add`); ``names`` and ``on_done`` go with them in
        order. Returns their ids. All are admitted together, so forked workers hold all."""
        self._check_job(function, cores, time_limit)
        here = current_dir()
        with self._lock:
            if self.closed:
                raise JobError('this JobQueue is shut down; restart() it first')
            if self._broken:
                raise JobError(f'this JobQueue is broken: {self._broken}')
            ids = []
            for index, args in enumerate(arguments):
                job_id = self._next_id
                self._next_id += 1
                job = Job(job_id, names[index] if names else None, cores, [], encode_id(job_id))
                job._runtime_key = (id(function), cores)
                job._on_done = on_done[index] if on_done else None
                job._call = (function, tuple(args), {}, here)
                job.time_limit = time_limit
                self._schedule.register(job)
                self._inbox.append(job)
                ids.append(job_id)
            self._post(None)
        return ids

    def _check_job(self, function: Callable, cores: int, time_limit: Optional[float]) -> None:
        if not callable(function):
            raise JobError(f'function must be callable, not {type(function).__name__}')
        if isinstance(cores, bool) or not isinstance(cores, int) or not 1 <= cores <= self.cores:
            raise JobError(f'a job may ask for 1 to {self.cores} cores (this queue has '
                           f'{self.cores}), not {cores!r}')
        if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(
                time_limit, (int, float)) or not time_limit > 0):
            raise JobError(f'time_limit must be a number of seconds > 0, not {time_limit!r}')

    def get(self, job: Union[int, str], timeout: Optional[float] = None) -> Any:
        """Wait for ``job`` and return its value, or raise its exception.

        An exception raised in the worker comes back with the worker's traceback text in
        ``remote_traceback``, chained from a JobError holding
        the same text. Other failures raise JobError with the reason. TimeoutError when
        ``timeout`` seconds pass first.
        """
        the_job = self._job(job)
        with self._cond:
            if not self._cond.wait_for(lambda: the_job.state.final, timeout):
                raise TimeoutError(f'job {the_job.id} did not finish within {timeout} s')
            value, kind, data = the_job._value, the_job._kind, the_job._result
        if the_job.state is State.COMPLETED:
            if value is _NOTHING and kind == b'r':
                value = the_job._value = data
                the_job._result = None
            elif value is _NOTHING:
                try:
                    value = loads(data, kind == b'd')  # type: ignore[arg-type]
                except Exception as exc:
                    raise JobError(f'the result of job {the_job.id} cannot be unpickled: '
                                   f'{exc!r}') from exc
                the_job._value, the_job._result = value, None
            return value
        if kind == b'e':
            exc_data, summary, tb_text = pickle.loads(data)  # type: ignore[arg-type]
            remote = JobError(f'job {the_job.id} ({the_job.name}) failed: {summary}\n'
                              f'Remote traceback:\n{tb_text}')
            try:
                exc = pickle.loads(exc_data) if exc_data else None
            except Exception:
                exc = None
            if exc is None:
                raise remote
            exc.remote_traceback = tb_text
            raise exc from remote            # the cause shows the traceback, once
        raise JobError(f'job {the_job.id} ({the_job.name}) {the_job.state.value}: '
                       f'{the_job.reason}')

    def wait(self, jobs: JobIds = None, timeout: Optional[float] = None) -> bool:
        """Wait for one job id, a list of ids, or (None) every job; False on timeout."""
        if jobs is None:
            with self._cond:
                return self._cond.wait_for(lambda: self._schedule.unfinished == 0, timeout)
        listed = [self._job(j) for j in self._as_list(jobs)]
        done = [0]

        def all_final() -> bool:
            while done[0] < len(listed) and listed[done[0]].state.final:
                done[0] += 1
            return done[0] == len(listed)

        with self._cond:
            return self._cond.wait_for(all_final, timeout)

    def wait_any(self, jobs: JobIds, timeout: Optional[float] = None) -> bool:
        """Wait until any listed job is final; False on timeout."""
        listed = [self._job(j) for j in self._as_list(jobs)]
        with self._cond:
            return self._cond.wait_for(lambda: any(j.state.final for j in listed), timeout)

    def warm(self) -> None:
        """Start every fresh worker now (they start with the first job that needs one
        otherwise), so that the next jobs find them ready."""
        with self._lock:
            self._warm = True
            self._post(None)

    def update(self, timeout: float = 10) -> None:
        """Let the scheduler handle everything sent so far (states are live otherwise)."""
        marker = threading.Event()
        with self._lock:
            if self.closed:
                return
            self._post(marker)
        marker.wait(timeout)

    def cancel(self, job: Union[int, str]) -> None:
        """Cancel a pending or running job (a running one's worker is killed); its
        dependents are cancelled. Returns at once; the state becomes CANCELLED shortly."""
        the_job = self._job(job)
        with self._lock:
            if not the_job.state.final:
                self._schedule.cancel_ids.add(the_job.id)
                self._post(None)

    def restart(self, force: bool = False) -> None:
        """Restart the scheduler and workers; running jobs block this unless ``force``."""
        with self._lock:
            running = sorted(j.id for j in self.jobs.values() if j.state is State.RUNNING)
            if running and not force:
                raise JobError(f'cannot restart: jobs {running} are running; use force=True '
                               f'to kill them')
        self._stop()
        with self._lock:
            finished: List[Job] = []
            self._schedule.fail_running('killed by restart', finished)
            if finished:
                self._cond.notify_all()
            self.closed, self._broken = False, None
        self._call_back(finished)
        self._start()
        atexit.unregister(self.shutdown)
        atexit.register(self.shutdown)

    def shutdown(self) -> None:
        """Stop the scheduler, kill every worker's process tree, fail unfinished jobs."""
        if self._pid != os.getpid():  # a forked copy: the lock may be held, workers aren't ours
            self.closed = True
            return
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._stop()
        self._fail_all('the queue was shut down')
        atexit.unregister(self.shutdown)

    def __enter__(self) -> 'JobQueue':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f'JobQueue(cores={self.cores}, jobs={len(self.jobs)}, closed={self.closed})'

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _as_list(jobs: JobIds) -> list:
        if isinstance(jobs, (int, str)):
            return [jobs]
        return list(jobs)  # type: ignore[arg-type]

    def _dependency_ids(self, dependencies: JobIds) -> List[int]:
        if dependencies is None:
            return []
        ids = []
        for dep in self._as_list(dependencies):
            try:
                if isinstance(dep, bool):
                    raise ValueError
                ids.append(int(dep))
            except (TypeError, ValueError):
                raise JobError(f'dependency {dep!r} is not a job id') from None
        return sorted(set(ids))

    def _job(self, job: Union[int, str]) -> Job:
        try:
            return self.jobs[int(job)]
        except (KeyError, TypeError, ValueError):
            raise JobError(f'unknown job id {job!r}') from None

    def _post(self, item: Any) -> None:
        """Hand an item to the scheduler and wake it (caller holds the lock)."""
        if item is not None:
            self._inbox.append(item)
        if not self._woken and self._wake_w >= 0:
            self._woken = True
            os.write(self._wake_w, b'.')

    def _start(self) -> None:
        self._stopping = False
        if self._wake_w < 0:
            self._wake_r, self._wake_w = os.pipe()
            self._woken = False
        self._thread = threading.Thread(
            target=run_dispatcher, args=(self, self._outputs, self.cores, self._next_id),
            name='cluster-jobqueue', daemon=True)
        self._thread.start()

    def _outputs(self, job: Job) -> None:
        """Called by the scheduler for each job it settled (lock held; waiters are
        notified right after)."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug('job %d %s (%s)', job.id, job.state.value, job.reason or 'ok')

    def _stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._post(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        stopped = self._thread is None or not self._thread.is_alive()
        self._thread = None
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:  # normally done by the thread itself
            dispatcher.stop_workers()
        if stopped and self._wake_w >= 0:  # a live thread may still read it: leave it
            with self._lock:
                for fd in (self._wake_r, self._wake_w):
                    os.close(fd)
                self._wake_r = self._wake_w = -1

    def _fail_all(self, reason: str) -> None:
        """The scheduler thread is gone: fail every unfinished job, refuse new ones."""
        finished: List[Job] = []
        with self._lock:
            self._broken = reason
            self._schedule.fail_unfinished(reason, finished)
            self._cond.notify_all()
        self._call_back(finished)

    @staticmethod
    def _call_back(finished: List[Job]) -> None:
        """Call the ``on_done`` of each settled job (no lock held)."""
        for job in finished:
            if job._on_done is not None:
                callback, job._on_done = job._on_done, None
                try:
                    callback(job)
                except Exception:
                    logger.exception('on_done of job %d failed', job.id)

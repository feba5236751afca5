"""The local JobQueue: a dependency DAG, cores-aware backfill, persistent worker processes.

>>> q = JobQueue(cores=2)
>>> first = q.add(pow, args=(2, 10))
>>> q.get(q.add(abs, args=(-3,), dependencies=[first]))
3

Design
------
* One scheduler thread (:func:`job_runner`) owns every state change. Callers add jobs to an
  inbox and wake it through a pipe; it blocks in :func:`multiprocessing.connection.wait`
  on that pipe, the workers' result pipes and their process sentinels (pidfds), so
  results and worker deaths are seen at once, without polling sleeps.
* Workers are fresh interpreters (``python -c``, never ``fork`` from this threaded
  process), each in its own session, started with the parent's ``sys.path`` and working
  directory. There are ``cores`` workers; a k-core job occupies one worker and k cores.
* Payloads are pickled once, in the caller's thread: plain :mod:`pickle` when it refers to
  nothing in ``__main__``, else :mod:`dill` by value (lambdas, closures, functions of the
  user's script). A ``__main__`` function's dill pickle is cached while the globals it
  names are the same immutable objects. Workers cache unpickled functions.
* Scheduling: the waiting line holds the jobs whose dependencies all completed, in id
  order. The head starts when its cores fit. While the head is blocked for cores, a later
  job that fits may start in its place ("backfill"), at most ``cores`` times per head
  job; after that the head holds a reservation and nothing else starts before it. This
  bound is what rules out starvation: the head waits at most for the running jobs and
  ``cores`` backfilled ones. Within the bound, the queue learns each function's last run
  time (per function pickle and core count) and, when it knows them, refuses a backfill
  that would end after the head's expected start (EASY backfill with learned estimates),
  unless it only uses cores the head will not need. Jobs with no known run time backfill
  freely within the bound.
* A job that raises is FAILED (exit code 1); :meth:`JobQueue.get` re-raises the worker's
  exception with its traceback text in ``exc.remote_traceback`` and as an exception note
  (Python 3.11+), chained from a :class:`~cluster.errors.JobError` whose message holds the
  same text (``raise exc from JobError(...)``) so Python 3.9/3.10 show it too.
* Bad input is refused at :meth:`JobQueue.add` with a JobError: cores outside 1..cores,
  an unknown dependency id (the new job's own id included, so no cycle can form). A
  function or arguments that cannot be pickled give a FAILED job whose ``get`` says why;
  an unpicklable return value fails that job alone. Results and exceptions of the user's
  ``__main__`` classes come back as those classes.
* Dependents of a failed job fail with the reason ``dependency N failed`` and never run.
* A worker killed by a signal fails its job (exit code ``-signal``, reason ``killed by
  signal 9 (SIGKILL)``); its process group is killed and a new worker takes its place.
* At exit (atexit) or :meth:`JobQueue.shutdown`, every worker's process tree is killed
  with psutil. A worker whose parent dies kills its own process group.
"""
from __future__ import annotations

import atexit
import heapq
import io
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
import types
import weakref
from multiprocessing.connection import Connection, wait as wait_ready
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .batch import State
from .errors import JobError

logger = logging.getLogger(__name__)

__all__ = ['JobQueue', 'Job', 'job_runner', 'get_jobqueue', 'JQUEUE']

#: the module-level queue, created by :func:`get_jobqueue` on first use (never at import)
JQUEUE: Optional['JobQueue'] = None
_JQUEUE_LOCK = threading.Lock()

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_HEADER = struct.Struct('!BI')  # flags, length of the function's pickle
_FN_DILL, _ARGS_DILL = 1, 2
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), range, frozenset)
JobIds = Union[int, str, Iterable[Union[int, str]], None]


def get_jobqueue(cores: Optional[int] = None) -> 'JobQueue':
    """The shared module-level queue (``JQUEUE``), created on first call.

    ``cores`` only matters on creation; a running queue is returned as it is.
    """
    global JQUEUE
    with _JQUEUE_LOCK:
        if JQUEUE is None or JQUEUE.closed or JQUEUE._pid != os.getpid():  # or forked
            JQUEUE = JobQueue(cores)
        return JQUEUE


# --------------------------------------------------------------------------- pickling

def _dumps(obj: Any) -> Tuple[bytes, bool]:
    """Pickle ``obj``; returns (data, by_dill). Plain pickle unless it names ``__main__``."""
    try:
        data = pickle.dumps(obj, _PROTOCOL)
        if b'__main__' not in data:
            return data, False
    except Exception:  # lambdas, closures, local classes: dill's job
        pass
    import dill
    return dill.dumps(obj, _PROTOCOL, recurse=True), True


def _loads(data: Union[bytes, memoryview], by_dill: bool) -> Any:
    if by_dill:
        import dill
        return dill.loads(data)
    return pickle.loads(data)


def _code_names(code: types.CodeType) -> List[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_code_names(const))
    return names


def _fingerprint(fn: types.FunctionType, depth: int = 0) -> Optional[tuple]:
    """What a ``__main__`` function's pickle depends on, or None when it may not be cached.

    The key holds the global values the code names: immutable values compare by value,
    modules, classes and builtins by identity, other ``__main__`` functions recursively.
    A mutable global, a closure, mutable defaults or function attributes: no caching.
    """
    if fn.__closure__ or fn.__kwdefaults__ or fn.__dict__ or depth > 3:
        return None
    if fn.__defaults__ and not all(isinstance(d, _IMMUTABLE) for d in fn.__defaults__):
        return None
    parts: List[Any] = [fn.__code__, fn.__defaults__]
    namespace = fn.__globals__
    for name in _code_names(fn.__code__):
        if name not in namespace:
            continue
        value = namespace[name]
        if isinstance(value, types.FunctionType) and value.__module__ == '__main__':
            inner = _fingerprint(value, depth + 1) if value is not fn else ()
            if inner is None:
                return None
            parts.append((value, inner))
        elif isinstance(value, (_IMMUTABLE, types.ModuleType, types.BuiltinFunctionType,
                                types.FunctionType, type)):
            parts.append((type(value), value))
        else:
            return None
    return tuple(parts)


class _FunctionPickles:
    """Cache of ``__main__`` functions' dill pickles, valid while their fingerprint holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()

    def dumps(self, fn: Callable) -> Tuple[bytes, bool]:
        if not (isinstance(fn, types.FunctionType) and fn.__module__ == '__main__'):
            return _dumps(fn)
        key = _fingerprint(fn)
        if key is not None:
            with self._lock:
                hit = self._cache.get(fn)
            if hit is not None and hit[0] == key:
                return hit[1]
        result = _dumps(fn)
        if key is not None:
            with self._lock:
                self._cache[fn] = (key, result)
        return result


_FUNCTION_PICKLES = _FunctionPickles()


def _encode_task(function: Callable, args: Sequence, kwargs: dict) -> Tuple[bytes, int]:
    """The message a worker runs, and a hash of the function's pickle (its runtime class)."""
    fn_data, fn_dill = _FUNCTION_PICKLES.dumps(function)
    args_data, args_dill = _dumps((tuple(args), kwargs))
    flags = (_FN_DILL if fn_dill else 0) | (_ARGS_DILL if args_dill else 0)
    return _HEADER.pack(flags, len(fn_data)) + fn_data + args_data, hash(fn_data)


# --------------------------------------------------------------------------- worker side

def _worker_main(task_fd: int, result_fd: int, lifeline_fd: int) -> None:
    """Entry point of a worker process: run tasks until the task pipe closes."""
    threading.Thread(target=_watch_parent, args=(lifeline_fd,), daemon=True).start()
    tasks = Connection(task_fd, writable=False)
    results = Connection(result_fd, readable=False)
    functions: Dict[bytes, Callable] = {}
    home = os.getcwd()
    results.send_bytes(b'h')
    while True:
        try:
            message = tasks.recv_bytes()
        except (EOFError, OSError):
            return
        results.send_bytes(_run_task(message, functions))
        try:
            if os.getcwd() != home:  # a job's chdir must not leak into the next job
                os.chdir(home)
        except OSError:
            os.chdir(home)


def _watch_parent(lifeline_fd: int) -> None:
    """Block until the parent's end of the lifeline closes, then kill this process group."""
    while os.read(lifeline_fd, 64):
        pass
    os.killpg(os.getpgid(0), signal.SIGKILL)


def _run_task(message: bytes, functions: Dict[bytes, Callable]) -> bytes:
    view = memoryview(message)
    flags, fn_len = _HEADER.unpack_from(view)
    start = _HEADER.size
    try:
        fn_key = bytes(view[start:start + fn_len])
        function = functions.get(fn_key)
        if function is None:
            function = _loads(fn_key, bool(flags & _FN_DILL))
            if len(functions) > 256:
                functions.clear()
            functions[fn_key] = function
        args, kwargs = _loads(view[start + fn_len:], bool(flags & _ARGS_DILL))
    except BaseException as exc:  # noqa: B902 - report anything, keep the worker alive
        return _error_message(JobError(f'cannot unpickle the job in the worker: {exc!r}'),
                              traceback.format_exc())
    try:
        value = function(*args, **kwargs)
    except BaseException as exc:  # noqa: B902 - SystemExit from a job is its failure
        tb = exc.__traceback__
        tb_text = ''.join(traceback.format_exception(type(exc), exc, tb.tb_next if tb else tb))
        return _error_message(exc, tb_text)
    try:
        data, by_dill = _dumps_back(value)
    except Exception as exc:
        return _error_message(JobError(
            f'the return value ({type(value).__name__}) cannot be pickled: {exc!r}'), '')
    return (b'd' if by_dill else b'o') + data


class _MainAliasPickler(pickle.Pickler):
    """Pickles the user's ``__main__`` classes (recreated here by dill) by reference.

    A worker's ``__main__`` is not the user's script, so plain pickle cannot find those
    classes; naming them in it lets the parent unpickle to its own classes, so
    ``isinstance`` and ``except MyError`` keep working there.
    """

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type) and obj.__module__ == '__main__' \
                and '.' not in obj.__qualname__:
            main = sys.modules['__main__']
            if getattr(main, obj.__qualname__, obj) is obj:
                setattr(main, obj.__qualname__, obj)
        return NotImplemented


def _dumps_back(obj: Any) -> Tuple[bytes, bool]:
    """Pickle a result or exception in a worker: plain, then ``__main__`` aliases, then dill."""
    try:
        return pickle.dumps(obj, _PROTOCOL), False
    except Exception:
        pass
    try:
        buffer = io.BytesIO()
        _MainAliasPickler(buffer, _PROTOCOL).dump(obj)
        return buffer.getvalue(), False
    except Exception:
        pass
    import dill
    return dill.dumps(obj, _PROTOCOL, recurse=True), True


def _error_message(exc: BaseException, tb_text: str) -> bytes:
    summary = f'{type(exc).__name__}: {exc}'
    try:
        exc_data: Optional[bytes] = _dumps_back(exc)[0]
        pickle.loads(exc_data)  # exceptions with odd __init__ fail only here
    except Exception:
        exc_data = None
    return b'e' + pickle.dumps((exc_data, summary, tb_text), _PROTOCOL)


# --------------------------------------------------------------------------- parent side

class Job:
    """One job of a :class:`JobQueue`; read its fields, the scheduler thread writes them."""

    __slots__ = ('id', 'name', 'cores', 'dependencies', 'state', 'exitcode', 'start', 'end',
                 'reason', 'submitted', '_payload', '_kind', '_result', '_value', '_unmet',
                 '_dependents', '_bypassed', '_runtime_key')

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
        self._payload = payload
        self._kind = b''      # b'o'/b'd' result pickle, b'e' error, b'' none
        self._result: Optional[bytes] = None
        self._value: Any = _NOTHING
        self._unmet = 0
        self._dependents: Optional[List[int]] = None
        self._bypassed = 0
        self._runtime_key: Any = None  # (function pickle hash, cores): learned run time

    def __repr__(self) -> str:
        return (f'Job(id={self.id}, name={self.name!r}, state={self.state.value}, '
                f'cores={self.cores}, exitcode={self.exitcode}, reason={self.reason!r})')


_NOTHING = object()


class _Worker:
    """A worker process and the parent's ends of its pipes."""

    def __init__(self, paths: List[str], cwd: str) -> None:
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        life_r, self.lifeline = os.pipe()
        boot = (f'import sys; sys.path[:0] = {paths!r}; from cluster.jobqueue import '
                f'_worker_main; _worker_main({task_r}, {result_w}, {life_r})')
        try:
            # a long-lived worker, not a command to run to completion: hence Popen, not run.cmd
            self.proc = subprocess.Popen([sys.executable, '-c', boot], cwd=cwd,
                                         pass_fds=(task_r, result_w, life_r),
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            for fd in (task_r, result_w, life_r):
                os.close(fd)
        self.tasks = Connection(task_w, readable=False)
        self.results = Connection(result_r, writable=False)
        self.sentinel: Optional[int] = None
        if hasattr(os, 'pidfd_open'):
            try:
                self.sentinel = os.pidfd_open(self.proc.pid)
            except OSError:
                pass
        self.job: Optional[Job] = None
        self.started = False  # said hello

    def kill_tree(self) -> None:
        """SIGKILL this worker and everything it started."""
        import psutil
        procs = []
        if self.proc.poll() is None:
            try:
                procs = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.Error:
                pass
            self.proc.kill()
        for proc in procs:  # those that left the worker's process group
            try:
                proc.kill()
            except psutil.Error:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)  # Popen reaps it: psutil would lose the exit code
        except subprocess.TimeoutExpired:
            logger.warning('worker %d did not die', self.proc.pid)

    def close(self) -> None:
        for conn in (self.tasks, self.results):
            conn.close()
        for fd in (self.lifeline, self.sentinel):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.lifeline = self.sentinel = None  # type: ignore[assignment]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return 'unknown signal'


def job_runner(jobqueue: 'JobQueue', outputs: Callable[[Job], None],
               cores: Optional[int] = None, jobno: Optional[int] = None) -> None:
    """The scheduler loop, run in ``jobqueue``'s thread until the queue stops.

    Takes new jobs from ``jobqueue``'s inbox, starts them on workers when their
    dependencies completed and their cores fit, and calls ``outputs(job)`` for every job
    that reaches a final state (the queue passes its notifier). ``cores`` defaults to the
    queue's; ``jobno`` is the first job id expected (kept from the seed; used in the log).
    """
    runner = _Scheduler(jobqueue, outputs, cores or jobqueue.cores)
    jobqueue._runner = runner
    logger.debug('job_runner started with %d cores (first job %s)', runner.cores, jobno)
    try:
        runner.run()
    except BaseException as exc:  # noqa: B902 - never leave waiters hanging
        logger.exception('job runner crashed')
        jobqueue._fail_all(f'the scheduler crashed: {exc!r}')
        raise
    finally:
        runner.stop_workers()


class _Scheduler:
    """State of one run of :func:`job_runner`: the workers and what they run."""

    def __init__(self, jobqueue: 'JobQueue', outputs: Callable[[Job], None], cores: int):
        self.q = jobqueue
        self.outputs = outputs
        self.cores = cores
        self.paths = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
        self.workers: List[_Worker] = [_Worker(self.paths, jobqueue._cwd) for _ in range(cores)]
        self.start_failures = 0

    def run(self) -> None:
        q = self.q
        while True:
            waitables: List[Any] = [q._wake_r]
            for worker in self.workers:
                waitables.append(worker.results)
                if worker.sentinel is not None:
                    waitables.append(worker.sentinel)
            ready = set(wait_ready(waitables))
            # read results outside the lock: a large one must not hold up add() callers
            inputs = [(worker, *self._read(worker, ready)) for worker in self.workers]
            markers: List[threading.Event] = []
            starts: List[Tuple[_Worker, Job]] = []
            finished: List[Job] = []
            with q._lock:
                if q._wake_r in ready:
                    os.read(q._wake_r, 4096)
                    q._woken = False
                for worker, messages, dead in inputs:
                    for message in messages:
                        self._receive(worker, message, finished)
                    if dead:
                        self._bury(worker, finished)
                if not q._stopping:
                    markers = q._admit(finished)
                    starts = q._schedule(self)
                for job in finished:
                    self.outputs(job)
                q._notify(finished)
                if q._stopping:
                    return
                for marker in markers:
                    marker.set()
            for worker, job in starts:
                payload, job._payload = job._payload, None
                try:
                    worker.tasks.send_bytes(payload)
                except OSError:  # the worker died; its sentinel reports the job
                    logger.debug('worker %d gone before job %d', worker.proc.pid, job.id)

    @staticmethod
    def _read(worker: _Worker, ready: set) -> Tuple[List[bytes], bool]:
        """The messages a worker sent, and whether it died."""
        messages: List[bytes] = []
        dead = worker.sentinel is not None and worker.sentinel in ready
        if worker.results in ready or dead:
            try:
                while worker.results.poll():
                    messages.append(worker.results.recv_bytes())
            except (EOFError, OSError):
                dead = True
        return messages, dead

    def _receive(self, worker: _Worker, message: bytes, finished: List[Job]) -> None:
        kind = message[:1]
        if kind == b'h':
            worker.started = True
            self.start_failures = 0
            return
        job, worker.job = worker.job, None
        if job is None:
            return
        job._kind, job._result = kind, message[1:]
        if kind == b'e':
            _, summary, _ = pickle.loads(job._result)
            self.q._finish(job, State.FAILED, 1, summary, finished)
        else:
            self.q._finish(job, State.COMPLETED, 0, None, finished)

    def _bury(self, worker: _Worker, finished: List[Job]) -> None:
        """A worker died: fail its job, kill what it left behind, start a new one."""
        try:
            worker.proc.wait(timeout=1)  # normally dead already (its sentinel fired)
        except subprocess.TimeoutExpired:
            pass
        worker.kill_tree()  # and whatever it left behind in its process group
        code = worker.proc.returncode
        job, worker.job = worker.job, None
        if job is not None and job.id in self.q._cancel_ids:
            self.q._cancel_ids.discard(job.id)
            self.q._finish(job, State.CANCELLED, code, 'cancelled', finished)
        elif job is not None:
            if code is not None and code < 0:
                reason = f'killed by signal {-code} ({_signal_name(-code)})'
            else:
                reason = f'worker process exited with code {code}'
            self.q._finish(job, State.FAILED, code, reason, finished)
        self.workers.remove(worker)
        worker.close()
        self.start_failures = 0 if worker.started else self.start_failures + 1
        if self.start_failures >= 3:
            self.q._broken = f'worker processes cannot start (exit code {code}); see stderr'
            logger.error('jobqueue: %s', self.q._broken)
            self.q._fail_pending(self.q._broken, finished)
            return
        if not self.q._stopping:
            self.workers.append(_Worker(self.paths, self.q._cwd))

    def idle_worker(self) -> Optional[_Worker]:
        for worker in self.workers:
            if worker.job is None:
                return worker
        return None

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.kill_tree()
            worker.close()
        self.workers = []


class JobQueue:
    """A local queue: ``add`` functions with dependencies and core counts, ``get`` results.

    Thread-safe. ``cores`` defaults to every core of the machine.
    """

    def __init__(self, cores: Optional[int] = None) -> None:
        if cores is None:
            import psutil
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
        self._ready: Dict[int, List[int]] = {}  # cores -> heap of ids whose deps completed
        self._free = cores
        self._runtimes: Dict[Any, float] = {}  # last run time per (function, cores)
        self._unfinished = 0
        self._cwd = os.getcwd()
        self._woken = False
        self._stopping = False
        self._broken: Optional[str] = None
        self.closed = False
        self._wake_r, self._wake_w = os.pipe()
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[_Scheduler] = None
        self._cancel_ids: set = set()
        self._start()
        atexit.register(self.shutdown)

    # ---------------------------------------------------------------- public API

    def add(self, function: Callable, args: Optional[Sequence] = None,
            kwargs: Optional[dict] = None, dependencies: JobIds = None, cores: int = 1,
            name: Optional[str] = None) -> int:
        """Queue ``function(*args, **kwargs)`` and return its job id (1, 2, ...).

        It starts once every job in ``dependencies`` completed and ``cores`` are free.
        A payload that cannot be pickled gives a FAILED job whose ``get`` says why.
        """
        if not callable(function):
            raise JobError(f'function must be callable, not {type(function).__name__}')
        if args is not None and not isinstance(args, (tuple, list)):
            raise JobError(f'args must be a tuple or list, not {type(args).__name__}')
        if kwargs is not None and not isinstance(kwargs, dict):
            raise JobError(f'kwargs must be a dict, not {type(kwargs).__name__}')
        if isinstance(cores, bool) or not isinstance(cores, int) or not 1 <= cores <= self.cores:
            raise JobError(f'a job may ask for 1 to {self.cores} cores (this queue has '
                           f'{self.cores}), not {cores!r}')
        deps = self._dependency_ids(dependencies)
        try:
            payload, fn_hash = _encode_task(function, args or (), kwargs or {})
            problem = None
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
            if problem:
                job.reason = problem
            self.jobs[job_id] = job
            self._unfinished += 1
            self._post(job)
        return job_id

    def get(self, job: Union[int, str], timeout: Optional[float] = None) -> Any:
        """Wait for ``job`` and return its value, or raise its exception.

        An exception raised in the worker comes back with the worker's traceback text in
        ``remote_traceback`` (and as a note on 3.11+), chained from a JobError holding
        the same text. Other failures raise JobError with the reason. TimeoutError when
        ``timeout`` seconds pass first.
        """
        the_job = self._job(job)
        with self._cond:
            if not self._cond.wait_for(lambda: the_job.state.final, timeout):
                raise TimeoutError(f'job {the_job.id} did not finish within {timeout} s')
            value, kind, data = the_job._value, the_job._kind, the_job._result
        if the_job.state is State.COMPLETED:
            if value is _NOTHING:
                try:
                    value = _loads(data, kind == b'd')  # type: ignore[arg-type]
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
            if hasattr(exc, 'add_note'):
                exc.add_note(f'Remote traceback of job {the_job.id}:\n{tb_text}')
            raise exc from remote
        raise JobError(f'job {the_job.id} ({the_job.name}) {the_job.state.value}: '
                       f'{the_job.reason}')

    def wait(self, jobs: JobIds = None, timeout: Optional[float] = None) -> bool:
        """Wait for one job id, a list of ids, or (None) every job; False on timeout."""
        if jobs is None:
            with self._cond:
                return self._cond.wait_for(lambda: self._unfinished == 0, timeout)
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
        dependents fail. Returns at once; the state becomes CANCELLED shortly."""
        the_job = self._job(job)
        with self._lock:
            if not the_job.state.final:
                self._cancel_ids.add(the_job.id)
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
            for job in self.jobs.values():
                if job.state is State.RUNNING:
                    self._finish(job, State.FAILED, None, 'killed by restart', finished)
            self._free = self.cores
            self._notify(finished)
            self.closed, self._broken = False, None
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
        if not self._woken:
            self._woken = True
            os.write(self._wake_w, b'.')

    def _start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(
            target=job_runner, args=(self, self._outputs, self.cores, self._next_id),
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
        self._thread = None
        runner, self._runner = self._runner, None
        if runner is not None:  # normally done by the thread itself
            runner.stop_workers()

    def _admit(self, finished: List[Job]) -> List[threading.Event]:
        """Take the inbox: resolve new jobs' dependencies, apply cancels; return markers."""
        inbox, self._inbox = self._inbox, []
        markers = []
        for item in inbox:
            if isinstance(item, threading.Event):
                markers.append(item)
                continue
            job = item
            if job._payload is None:  # could not be pickled
                self._finish(job, State.FAILED, None, job.reason, finished)
                continue
            for dep_id in job.dependencies:
                dep = self.jobs[dep_id]
                if dep.state is State.COMPLETED:
                    continue
                if dep.state.final:
                    why = 'failed' if dep.state is State.FAILED else dep.state.value
                    self._finish(job, State.FAILED, None, f'dependency {dep_id} {why}',
                                 finished)
                    break
                if dep._dependents is None:
                    dep._dependents = []
                dep._dependents.append(job.id)
                job._unmet += 1
            else:
                if job._unmet == 0:
                    heapq.heappush(self._ready.setdefault(job.cores, []), job.id)
        for job_id in sorted(self._cancel_ids):
            job = self.jobs[job_id]
            if job.state is State.RUNNING:
                runner = self._runner
                for worker in runner.workers if runner else ():
                    if worker.job is job:  # the worker's death settles the job
                        worker.kill_tree()
                continue  # stays listed: _bury makes it CANCELLED
            self._cancel_ids.discard(job_id)
            if not job.state.final:
                self._remove_ready(job)
                self._finish(job, State.CANCELLED, None, 'cancelled', finished)
        return markers

    def _remove_ready(self, job: Job) -> None:
        heap = self._ready.get(job.cores)
        if heap and job.id in heap:
            heap.remove(job.id)
            heapq.heapify(heap)

    def _schedule(self, runner: _Scheduler) -> List[Tuple[_Worker, Job]]:
        """Start what may start now: the head of the line, else a backfill (module doc)."""
        starts = []
        now = time.time()
        while self._free > 0:
            tops = sorted((heap[0], size) for size, heap in self._ready.items() if heap)
            if not tops:
                break
            head = self.jobs[tops[0][0]]
            if head.cores <= self._free:
                pick: Optional[Job] = head
            else:
                pick = self._backfill(head, tops, runner, now)
                if pick is None:
                    break
                head._bypassed += 1
            worker = runner.idle_worker()
            if worker is None:
                break
            heapq.heappop(self._ready[pick.cores])
            pick.state, pick.start = State.RUNNING, now
            self._free -= pick.cores
            worker.job = pick
            starts.append((worker, pick))
        return starts

    def _backfill(self, head: Job, tops: List[Tuple[int, int]], runner: _Scheduler,
                  now: float) -> Optional[Job]:
        """The job to start in the blocked head's place, or None (the head's reservation)."""
        if head._bypassed >= self.cores:
            return None
        shadow, extra = self._shadow(head, runner, now)
        for job_id, size in tops[1:]:
            if size > self._free:
                continue
            job = self.jobs[job_id]
            if shadow is None or size <= extra:
                return job
            estimate = self._runtimes.get(job._runtime_key)
            if estimate is None or now + estimate <= shadow + 0.01 + 0.05 * estimate:
                return job
        return None

    def _shadow(self, head: Job, runner: _Scheduler, now: float) -> Tuple[Optional[float], int]:
        """When the head could start, by learned run times, and the cores it leaves spare.

        (None, 0) when a running job's run time is not known yet.
        """
        ends = []
        for worker in runner.workers:
            job = worker.job
            if job is not None:
                estimate = self._runtimes.get(job._runtime_key)
                if estimate is None:
                    return None, 0
                ends.append((max(now, job.start + estimate), job.cores))  # type: ignore
        available = self._free
        for end, cores in sorted(ends):
            available += cores
            if available >= head.cores:
                return end, available - head.cores
        return None, 0

    def _finish(self, job: Job, state: State, exitcode: Optional[int], reason: Optional[str],
                finished: List[Job]) -> None:
        """Settle a job (lock held) and release or fail its dependents."""
        if job.state is State.RUNNING:
            self._free += job.cores
        job.state, job.exitcode, job.end = state, exitcode, time.time()
        if state is State.COMPLETED and job.start is not None:
            self._runtimes[job._runtime_key] = job.end - job.start
        job.reason = reason
        job._payload = None
        finished.append(job)
        self._unfinished -= 1
        dependents, job._dependents = job._dependents or [], None
        for dep_id in dependents:
            dependent = self.jobs[dep_id]
            if dependent.state.final:
                continue
            if state is State.COMPLETED:
                dependent._unmet -= 1
                if dependent._unmet == 0:
                    heapq.heappush(self._ready.setdefault(dependent.cores, []), dependent.id)
            else:
                self._remove_ready(dependent)
                why = 'failed' if state is State.FAILED else state.value
                self._finish(dependent, State.FAILED, None, f'dependency {job.id} {why}',
                             finished)

    def _notify(self, finished: List[Job]) -> None:
        if finished:
            self._cond.notify_all()

    def _fail_pending(self, reason: str, finished: List[Job]) -> None:
        for job in list(self.jobs.values()):
            if not job.state.final and job.state is not State.RUNNING:
                self._finish(job, State.FAILED, None, reason, finished)
        self._ready.clear()

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            finished: List[Job] = []
            for job in list(self.jobs.values()):
                if not job.state.final:
                    self._finish(job, State.FAILED, None, reason, finished)
            self._ready.clear()
            self._free = self.cores
            self._cond.notify_all()

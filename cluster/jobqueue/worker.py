"""The JobQueue's worker processes: the task message, both ends of a worker, pickling.

A task message is ``header + working directory + function pickle + (args, kwargs)
pickle``; the header holds which of the two are dill pickles and the lengths of the
directory (the caller's, at ``add``; empty for none) and of the function pickle.
Payloads are pickled once, in the caller's thread: plain :mod:`pickle` when they refer to nothing in
``__main__``, else :mod:`dill` by value (lambdas, closures, functions of the user's
script). A ``__main__`` function's dill pickle is cached while the globals it names are the
same immutable objects; workers cache unpickled functions by their pickle.

A worker answers with one message per task: ``h`` once when it is ready, then ``o`` or
``d`` + the value's pickle (plain or dill), or ``e`` + a pickle of
``(exception pickle or None, summary, traceback text)``.

Workers are fresh interpreters (``python -c``, never ``fork`` from the threaded parent),
each in its own session, started with the parent's ``sys.path`` in ``/``: a worker never
depends on a user's directory, it changes into each job's own directory for that job
(a job whose directory is gone fails, saying so).
A worker whose parent dies kills its own process group.
"""
from __future__ import annotations

import io
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import traceback
import types
import weakref
from multiprocessing.connection import Connection
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import psutil

from ..run.errors import JobError

logger = logging.getLogger(__name__)

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_HEADER = struct.Struct('!BII')  # flags, length of the directory, of the function's pickle
#: where workers start and return to between jobs: a directory that always exists
WORKER_HOME = '/'
_FN_DILL, _ARGS_DILL = 1, 2
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), range, frozenset)


# --------------------------------------------------------------------------- pickling

def dumps(obj: Any) -> Tuple[bytes, bool]:
    """Pickle ``obj``; returns (data, by_dill). Plain pickle unless it names ``__main__``."""
    try:
        data = pickle.dumps(obj, _PROTOCOL)
        if b'__main__' not in data:
            return data, False
    except Exception:  # lambdas, closures, local classes: dill's job
        pass
    import dill  # heavy: dill
    return dill.dumps(obj, _PROTOCOL, recurse=True), True


def loads(data: Union[bytes, memoryview], by_dill: bool) -> Any:
    """Unpickle what :func:`dumps` (or a worker's answer) made."""
    if by_dill:
        import dill  # heavy: dill
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
            return dumps(fn)
        key = _fingerprint(fn)
        if key is not None:
            with self._lock:
                hit = self._cache.get(fn)
            if hit is not None and hit[0] == key:
                return hit[1]
        result = dumps(fn)
        if key is not None:
            with self._lock:
                self._cache[fn] = (key, result)
        return result


_FUNCTION_PICKLES = _FunctionPickles()


def encode_task(function: Callable, args: Sequence, kwargs: dict,
                cwd: Optional[str] = None) -> Tuple[bytes, int]:
    """The message a worker runs in ``cwd``, and a hash of the function's pickle (its
    runtime class)."""
    fn_data, fn_dill = _FUNCTION_PICKLES.dumps(function)
    args_data, args_dill = dumps((tuple(args), kwargs))
    flags = (_FN_DILL if fn_dill else 0) | (_ARGS_DILL if args_dill else 0)
    where = os.fsencode(cwd) if cwd else b''
    return (_HEADER.pack(flags, len(where), len(fn_data)) + where + fn_data + args_data,
            hash(fn_data))


def current_dir() -> Optional[str]:
    """The caller's working directory, or None when it was deleted."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------- in the worker

def worker_main(task_fd: int, result_fd: int, lifeline_fd: int) -> None:
    """Entry point of a worker process: run tasks until the task pipe closes."""
    threading.Thread(target=_watch_parent, args=(lifeline_fd,), daemon=True).start()
    tasks = Connection(task_fd, writable=False)
    results = Connection(result_fd, readable=False)
    functions: Dict[bytes, Callable] = {}
    os.chdir(WORKER_HOME)
    results.send_bytes(b'h')
    while True:
        try:
            message = tasks.recv_bytes()
        except (EOFError, OSError):
            return
        answer = _run_task(message, functions)
        os.chdir(WORKER_HOME)  # before answering: a job's directory may go once it ended
        results.send_bytes(answer)


def _watch_parent(lifeline_fd: int) -> None:
    """Block until the parent's end of the lifeline closes, then kill this process group."""
    while os.read(lifeline_fd, 64):
        pass
    os.killpg(os.getpgid(0), signal.SIGKILL)


def _run_task(message: bytes, functions: Dict[bytes, Callable]) -> bytes:
    """Run one task message; return the answer message."""
    view = memoryview(message)
    flags, cwd_len, fn_len = _HEADER.unpack_from(view)
    start = _HEADER.size + cwd_len
    cwd = os.fsdecode(bytes(view[_HEADER.size:start]))
    try:
        if cwd:
            os.chdir(cwd)
    except OSError as exc:
        return _error_message(JobError(f'the directory the job was added from is gone or '
                                       f'unusable: {cwd}: {exc.strerror}'), '')
    try:
        fn_key = bytes(view[start:start + fn_len])
        function = functions.get(fn_key)
        if function is None:
            function = loads(fn_key, bool(flags & _FN_DILL))
            if len(functions) > 256:
                functions.clear()
            functions[fn_key] = function
        args, kwargs = loads(view[start + fn_len:], bool(flags & _ARGS_DILL))
    except BaseException as exc:  # noqa: B902 - report anything, keep the worker alive
        return _error_message(JobError(f'cannot unpickle the job in the worker: {exc!r}'),
                              traceback.format_exc())
    return call_message(function, args, kwargs)


def call_message(function: Callable, args: Sequence, kwargs: dict,
                 raw: bool = False) -> bytes:
    """Make the call; its value (with ``raw``, bytes as they are) or its exception as the
    message a worker sends back."""
    try:
        value = function(*args, **kwargs)
    except BaseException as exc:  # noqa: B902 - SystemExit from a job is its failure
        tb = exc.__traceback__
        tb_text = ''.join(traceback.format_exception(type(exc), exc, tb.tb_next if tb else tb))
        return _error_message(exc, tb_text)
    if raw and type(value) is bytes:
        return b'r' + value
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
    import dill  # heavy: dill
    return dill.dumps(obj, _PROTOCOL, recurse=True), True


def _error_message(exc: BaseException, tb_text: str) -> bytes:
    summary = f'{type(exc).__name__}: {exc}'
    try:
        exc_data: Optional[bytes] = _dumps_back(exc)[0]
        pickle.loads(exc_data)  # exceptions with odd __init__ fail only here
    except Exception:
        exc_data = None
    return b'e' + pickle.dumps((exc_data, summary, tb_text), _PROTOCOL)


# --------------------------------------------------------------------------- in the parent

def open_sentinel(pid: int) -> Optional[int]:
    """A pidfd of process ``pid``, readable once it ends (None where there is none)."""
    if hasattr(os, 'pidfd_open'):
        try:
            return os.pidfd_open(pid)
        except OSError:
            pass
    return None


class WorkerProcess:
    """A worker process and the parent's ends of its pipes; ``job`` is what it runs."""

    def __init__(self, paths: List[str]) -> None:
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        life_r, self.lifeline = os.pipe()
        boot = (f'import sys; sys.path[:0] = {paths!r}; from cluster.jobqueue.worker '
                f'import worker_main; worker_main({task_r}, {result_w}, {life_r})')
        try:
            # a long-lived worker, not a command to run to completion: hence Popen, not run.cmd
            self.proc = subprocess.Popen([sys.executable, '-c', boot], cwd=WORKER_HOME,
                                         pass_fds=(task_r, result_w, life_r),
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            for fd in (task_r, result_w, life_r):
                os.close(fd)
        self.tasks = Connection(task_w, readable=False)
        self.results = Connection(result_r, writable=False)
        self.sentinel = open_sentinel(self.proc.pid)
        self.job: Any = None  # the cluster.jobqueue.Job it runs
        self.started = False  # said hello

    forked = False  # a fresh interpreter (cluster.jobqueue.forked has the other kind)

    def kill_tree(self) -> None:
        """SIGKILL this worker and everything it started."""
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
        """Close the parent's ends of the pipes and the pidfd."""
        for conn in (self.tasks, self.results):
            conn.close()
        for fd in (self.lifeline, self.sentinel):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.lifeline = self.sentinel = None  # type: ignore[assignment]

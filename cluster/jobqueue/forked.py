"""The JobQueue's forked workers: children of this process that run jobs added with
``fork=True`` from their own copy of its memory.

Such a job keeps its callable and arguments in memory (``Job._call``): nothing is pickled
to run it, only its return value comes back. The scheduler thread forks a worker when a
forked job may start and no idle forked worker holds that job (a worker holds the jobs
added before it was forked); an idle worker is reused for every job it holds, so a
``map`` of many chunks forks at most one worker per core. A worker that holds none of
the waiting jobs is retired (its task pipe closed, it exits).

A forked worker speaks the fresh workers' protocol (:mod:`cluster.jobqueue.worker`): the
parent sends a job id, the worker answers ``o``/``d`` + the value's pickle or ``e`` + the
error, so the scheduler settles both kinds alike; a worker killed by a signal fails its
job with that signal. Each is in its own session, closes the queue's other pipes, and
kills its process group when the parent's end of its lifeline closes.

Forking a threaded process copies only the forking thread: a forked job must not need a
lock another thread of the parent held at that moment (as with multiprocessing's
``fork`` start method). Standard streams are flushed before each fork.
"""
from __future__ import annotations

import gc
import os
import signal
import struct
import subprocess
import sys
import threading
import warnings
from multiprocessing.connection import Connection, wait as wait_ready
from typing import Any, Dict, Iterable, Optional

from ..run.errors import JobError
from .worker import WorkerProcess, _error_message, _watch_parent, call_message, open_sentinel

_ID = struct.Struct('!Q')


def encode_id(job_id: int) -> bytes:
    """The message that tells a forked worker which job to run."""
    return _ID.pack(job_id)


class ForkedProcess:
    """The part of ``subprocess.Popen`` the scheduler uses, for a forked child."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: Optional[int] = None
        self.sentinel: Optional[int] = None  # the pidfd, when the system has them

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -signal.SIGKILL  # reaped elsewhere: not a success
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        """Reap the child; ``TimeoutExpired`` when it lives on after ``timeout`` s."""
        if self.poll() is None and timeout is not None and self.sentinel is not None:
            if not wait_ready([self.sentinel], timeout):
                raise subprocess.TimeoutExpired(f'forked worker {self.pid}', timeout)
        if self.returncode is None:
            try:
                self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            except ChildProcessError:
                self.returncode = -signal.SIGKILL
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass


class ForkWorker(WorkerProcess):
    """A forked worker and the parent's ends of its pipes (closed as a
    :class:`WorkerProcess`'s are).

    ``holds`` is the highest job id it has in memory (every job up to it was added before
    the fork).
    """

    forked = True

    def __init__(self, jobs: Dict[int, Any], holds: int, inherited: Iterable[int]) -> None:
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        life_r, self.lifeline = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # else the child writes their buffers again
            try:
                stream.flush()
            except Exception:
                pass
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)  # 3.12+: fork with threads
            pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(jobs, task_r, result_w, life_r,
                   [task_w, result_r, self.lifeline, *inherited])
        for fd in (task_r, result_w, life_r):
            os.close(fd)
        self.proc = ForkedProcess(pid)
        self.holds = holds
        self.tasks = Connection(task_w, readable=False)
        self.results = Connection(result_r, writable=False)
        self.sentinel = self.proc.sentinel = open_sentinel(pid)
        self.job: Any = None
        self.started = True
        self.retired = False

    def fds(self) -> list:
        """The parent's descriptors of this worker (a later child closes its copies)."""
        found = [conn.fileno() for conn in (self.tasks, self.results) if not conn.closed]
        return found + [fd for fd in (self.lifeline, self.sentinel) if fd is not None]

    def retire(self) -> None:
        """Close its task pipe: the worker exits (its sentinel then fires)."""
        self.retired = True
        self.tasks.close()

    def kill_tree(self) -> None:
        """SIGKILL this worker's process group and reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except Exception:
            pass


def _child(jobs: Dict[int, Any], task_fd: int, result_fd: int, lifeline_fd: int,
           foreign: Iterable[int]) -> None:
    """The forked worker: run the jobs the parent names until its task pipe closes."""
    code = 1
    try:
        os.setsid()
        gc.freeze()  # the collector would touch, and so copy, every page of the parent's
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in foreign:
            try:
                os.close(fd)
            except OSError:
                pass
        threading.Thread(target=_watch_parent, args=(lifeline_fd,), daemon=True).start()
        tasks = Connection(task_fd, writable=False)
        results = Connection(result_fd, readable=False)
        while True:
            try:
                message = tasks.recv_bytes()
            except (EOFError, OSError):
                code = 0
                break
            answer = _run(jobs, _ID.unpack(message)[0])
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            results.send_bytes(answer)
    finally:
        os._exit(code)


def _run(jobs: Dict[int, Any], job_id: int) -> bytes:
    """Run one job of the child's copy of the queue; the answer message."""
    job = jobs[job_id]
    function, args, kwargs, cwd = job._call
    if cwd:
        try:
            os.chdir(cwd)
        except OSError as exc:
            return _error_message(JobError(f'the directory the job was added from is gone '
                                           f'or unusable: {cwd}: {exc.strerror}'), '')
    # bytes are the common answer of a forked job (its own pickle): they go as they are
    return call_message(function, args, kwargs, raw=True)


"""The JobQueue's scheduler thread: it owns every state change of the queue's jobs.

Callers add jobs to the queue's inbox and wake the thread through a pipe; it blocks in
:func:`multiprocessing.connection.wait` on that pipe, the workers' result pipes and their
process sentinels (pidfds), so results and worker deaths are seen at once, without polling
sleeps. Each pass settles what arrived, admits the inbox, lets the
:class:`~cluster.jobqueue.scheduling.Schedule` pick what starts, and sends those tasks.
A worker that dies fails its job (or cancels it, when asked) and is replaced; three
workers in a row that die before saying hello break the queue.
"""
from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import wait as wait_ready
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from ..batch import State
from .forked import ForkWorker
from .worker import WorkerProcess, current_dir

if TYPE_CHECKING:
    from .core import Job, JobQueue

logger = logging.getLogger(__name__)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return 'unknown signal'


class Dispatcher:
    """One run of the scheduler thread: the workers and the loop that feeds them.

    It shares the queue's state under the queue's lock; ``outputs(job)`` is called for
    every job it settles (lock held; waiters are notified right after).
    """

    def __init__(self, jobqueue: 'JobQueue', outputs: Callable[['Job'], None],
                 cores: int) -> None:
        self.q = jobqueue
        self.outputs = outputs
        self.cores = cores
        # '' (the current directory) stays: in a worker it is the job's directory
        here = current_dir() or '/'
        self.paths = [p if not p or os.path.isabs(p) else os.path.join(here, p)
                      for p in sys.path]
        # the directory this cluster package lies in goes first, so that a directory
        # named cluster elsewhere on the path (tests/cluster) never shadows it in a worker
        self.paths.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))))
        #: fresh workers start with the first job that needs one (up to ``cores``), forked
        #: ones as :meth:`choose` says
        self.workers: List[Any] = []
        self.start_failures = 0

    def choose(self, job: 'Job') -> Any:
        """The worker ``job`` starts on (lock held): an idle one of its kind, else a new
        one (a forked worker holds the jobs added before it was forked)."""
        if job._call is None:
            fresh = [w for w in self.workers if not w.forked]
            worker = next((w for w in fresh if w.job is None), None)
            if worker is None and len(fresh) < self.cores:
                worker = WorkerProcess(self.paths)
                self.workers.append(worker)
            return worker
        forked = [w for w in self.workers if w.forked and not w.retired]
        worker = next((w for w in forked if w.job is None and w.holds >= job.id), None)
        if worker is None:
            if len(forked) >= self.cores:
                stale = next((w for w in forked if w.job is None), None)
                if stale is None:
                    return None
                stale.retire()
            worker = ForkWorker(self.q.jobs, self.q._next_id - 1, self._fds())
            self.workers.append(worker)
        # its id now (8 bytes, to an idle worker): it starts while others are forked
        payload, job._payload = job._payload, None
        try:
            worker.tasks.send_bytes(payload)
        except OSError:  # the worker died; its sentinel reports the job
            logger.debug('forked worker %d gone before job %d', worker.proc.pid, job.id)
        return worker

    def _fds(self) -> List[int]:
        """The queue's descriptors, which a forked worker closes."""
        found = [self.q._wake_r, self.q._wake_w]
        for worker in self.workers:
            if worker.forked:
                found += worker.fds()
            else:
                found += [worker.tasks.fileno(), worker.results.fileno(), worker.lifeline]
                found += [worker.sentinel] if worker.sentinel is not None else []
        return [fd for fd in found if fd is not None and fd >= 0]

    def run(self) -> None:
        """Loop until the queue stops."""
        q = self.q
        schedule = q._schedule
        while True:
            waitables: List[Any] = [q._wake_r]
            for worker in self.workers:
                waitables.append(worker.results)
                if worker.sentinel is not None:
                    waitables.append(worker.sentinel)
            ready = set(wait_ready(waitables, self._next_deadline()))
            # read results outside the lock: a large one must not hold up add() callers
            inputs = [(worker, *self._read(worker, ready)) for worker in self.workers]
            markers: List[threading.Event] = []
            starts: List[Tuple[WorkerProcess, Job]] = []
            finished: List[Job] = []
            stop = False
            with q._lock:
                if q._wake_r in ready:
                    os.read(q._wake_r, 4096)
                    q._woken = False
                for worker, messages, dead in inputs:
                    for message in messages:
                        self._receive(worker, message, finished)
                    if dead:
                        self._bury(worker, finished)
                self._enforce_time_limits()
                if q._warm and not q._stopping:
                    q._warm = False
                    while sum(not w.forked for w in self.workers) < self.cores:
                        self.workers.append(WorkerProcess(self.paths))
                if not q._stopping:
                    markers = self._take_inbox(finished)
                    starts = schedule.start_ready(self.workers, self.choose)
                for job in finished:
                    self.outputs(job)
                if finished:
                    q._cond.notify_all()
                stop = q._stopping
                if not stop:
                    for marker in markers:
                        marker.set()
            if stop:
                q._call_back(finished)
                return
            for worker, job in starts:
                payload, job._payload = job._payload, None
                if payload is None:  # sent by choose()
                    continue
                try:
                    worker.tasks.send_bytes(payload)
                except OSError:  # the worker died; its sentinel reports the job
                    logger.debug('worker %d gone before job %d', worker.proc.pid, job.id)
            q._call_back(finished)  # after the sends: workers need not wait for callbacks

    def _next_deadline(self) -> Optional[float]:
        """Seconds until the first running job reaches its time limit; None: no limit."""
        ends = [w.job.start + w.job.time_limit for w in self.workers
                if w.job is not None and w.job.time_limit and w.job.start is not None
                and w.job.id not in self.q._schedule.timeout_ids]
        return max(0.0, min(ends) - time.time()) if ends else None

    def _enforce_time_limits(self) -> None:
        """Kill the workers of jobs past their limit; their deaths settle them TIMEOUT."""
        now = time.time()
        for worker in self.workers:
            job = worker.job
            if (job is not None and job.time_limit and job.start is not None
                    and now >= job.start + job.time_limit
                    and job.id not in self.q._schedule.timeout_ids):
                logger.info('job %d reached its time limit of %g s', job.id, job.time_limit)
                self.q._schedule.timeout_ids.add(job.id)
                worker.kill_tree()

    def _take_inbox(self, finished: List['Job']) -> List[threading.Event]:
        """Admit new jobs, carry out cancels; return the ``update()`` markers to set."""
        q = self.q
        inbox, q._inbox = q._inbox, []
        markers = []
        for item in inbox:
            if isinstance(item, threading.Event):
                markers.append(item)
            else:
                q._schedule.admit(item, finished)
        for job in q._schedule.take_cancels(finished):
            for worker in self.workers:
                if worker.job is job:  # the worker's death settles the job
                    worker.kill_tree()
        return markers

    @staticmethod
    def _read(worker: WorkerProcess, ready: set) -> Tuple[List[bytes], bool]:
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

    def _receive(self, worker: WorkerProcess, message: bytes, finished: List['Job']) -> None:
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
            self.q._schedule.finish(job, State.FAILED, 1, summary, finished)
        else:
            self.q._schedule.finish(job, State.COMPLETED, 0, None, finished)

    def _bury(self, worker: WorkerProcess, finished: List['Job']) -> None:
        """A worker died: settle its job, kill what it left behind, start a new one."""
        q = self.q
        try:
            worker.proc.wait(timeout=1)  # normally dead already (its sentinel fired)
        except subprocess.TimeoutExpired:
            pass
        worker.kill_tree()  # and whatever it left behind in its process group
        code = worker.proc.returncode
        job, worker.job = worker.job, None
        if job is not None:
            if code is not None and code < 0:
                reason = f'killed by signal {-code} ({_signal_name(-code)})'
            else:
                reason = f'worker process exited with code {code}'
            q._schedule.finish_killed(job, code, reason, finished)
        self.workers.remove(worker)
        worker.close()
        if worker.forked:
            return
        self.start_failures = 0 if worker.started else self.start_failures + 1
        if self.start_failures >= 3:
            q._broken = f'worker processes cannot start (exit code {code}); see stderr'
            logger.error('jobqueue: %s', q._broken)
            q._schedule.fail_waiting(q._broken, finished)

    def stop_workers(self) -> None:
        """Kill every worker's process tree."""
        for worker in self.workers:
            worker.kill_tree()
            worker.close()
        self.workers = []

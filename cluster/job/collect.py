"""The Executor's collector: one thread that settles the futures of submitted tasks.

A task is over when its result file is there (looked at directly where the files are
local: it is written atomically after the last call), or when the batch system's
:class:`~cluster.queue.Watcher` shows it ended (then its result file is fetched once, and
without one every call of the task fails with the task's state and reason). So a task that
vanished from the queue settles from its result file or the accounting, never hangs.
The collector also shows the progress bar (:mod:`cluster.job.progress`).
"""
from __future__ import annotations

import logging
import threading
from typing import List, Optional

from .. import queue
from ..batch import State
from ..run.errors import JobError
from ..run.storage import LocalStore
from .arrays import read_results
from .chunks import call_error
from .futures import Task
from .progress import Progress

logger = logging.getLogger(__name__)

#: seconds between looks at the result files of local tasks
LOOK_INTERVAL = 0.1


class Collector:
    """Settles the futures of one Executor's tasks, in a thread of its own."""

    def __init__(self, system, progress: bool) -> None:
        self.system = system
        self.watcher = queue.watcher(system)
        self.progress = Progress(progress)
        self._open: List[Task] = []
        self._all: List[Task] = []
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False

    def add(self, tasks: List[Task]) -> None:
        with self._cond:
            self._open += tasks
            self._all += tasks
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f'cluster-executor-{self.system.name}')
                self._thread.start()
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._open or self._stopped)
                if not self._open:
                    self.progress.close()
                    return
                tasks = [t for t in self._open if t._submitted.is_set()]
            try:
                self._look(tasks)
            except Exception as exc:  # a poll that keeps failing fails the open calls
                logger.error('executor: %s', exc)
                for task in tasks:
                    self._fail(task, exc)
            with self._cond:
                self._open = [t for t in self._open if not t.settled]
            self.progress.show(self._all)
            ids = [t._id for t in tasks if t.submitted and not t.settled]
            if ids:
                self.system.block(ids, LOOK_INTERVAL)
            else:
                with self._cond:
                    self._cond.wait(LOOK_INTERVAL)

    def _look(self, tasks: List[Task]) -> None:
        tasks = [t for t in tasks if not t.forked]  # those settle themselves
        for task in tasks:
            if task._error is not None:
                self._fail(task, task._error)
            elif isinstance(task.store, LocalStore) and self._settle_from_file(task):
                continue
        open_ids = [t._id for t in tasks if t.submitted and not t.settled]
        if not open_ids:
            return
        self.watcher.refresh()
        for task in tasks:
            if task.settled or not task.submitted:
                continue
            info = self.watcher.info(task._id)
            if info.state is State.RUNNING and not task.running:
                task.running = True
                for future in task.futures:
                    future.set_running_or_notify_cancel()
            if info.state.final or (info.state is State.UNKNOWN and info.reason):
                if not self._settle_from_file(task):
                    why = f'ended {info.state}' + (f': {info.reason}' if info.reason else '')
                    self._fail(task, JobError(
                        f'task {task.index} of {task.name} ({task._id}) {why}; '
                        f'its calls left no result'))

    def _settle_from_file(self, task: Task) -> bool:
        """Settle the task from its result file; False when there is none yet."""
        try:
            results = read_results(task)
        except Exception as exc:
            self._fail(task, JobError(f'result of task {task.index} of {task.name} '
                                      f'cannot be read: {exc}'))
            return True
        if results is None:
            return False
        for future, tagged in zip(task.futures, results):
            if tagged[0] == 'ok':
                future.settle(tagged[1])
            else:
                future.settle(error=call_error(tagged))
        task.settled = True
        return True

    def _fail(self, task: Task, error: BaseException) -> None:
        for future in task.futures:
            future.settle(error=error)
        task.settled = True

    def counts(self):
        return self.progress.counts(self._all)

"""How an Executor's tasks reach a batch system: the payload of each task, the job array
(:class:`ArrayJob`, one submit for up to the system's array limit of tasks), one job per
task where the system has no arrays, and local mode's JobQueue.

Every task's calls run in one Python process (:mod:`cluster.script.tasks`), which writes
one result file per task; the files lie next to the job's own
(``<name>.<suffix>.task<i>.in/.out``, the runner copies ``<name>.<suffix>.tasks.py`` and
``.runner.py``).
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import shlex
import sys
from typing import Any, Dict, List, Optional, Sequence

from .. import queue
from ..batch._arrays import AFTER_ANY_OPTION, ARRAY_OPTION, task_ids
from ..script import function as _function
from ..script import runner as _runner
from ..script import tasks as _tasks
from ..script.body import Attempts, job_body
from ..script.files import JobFiles, write_atomic
from . import records, requeue
from .core import Job
from .futures import Task
from .prepare import dependency_ids

logger = logging.getLogger(__name__)


def node_files(base: str) -> Dict[str, str]:
    """The node-side program of the tasks whose files start with ``base``: path -> text."""
    return {base + '.tasks.py': inspect.getsource(_tasks),
            base + '.runner.py': _function.runner_source()}


def task_payload(task: Task, imports: Sequence[str], by_value: bool) -> bytes:
    """The context, then the task's calls (futures replaced by references), pickled."""
    context: Dict[str, Any] = {'imports': list(imports or ())}
    if not by_value:
        context.update(cwd=os.getcwd(), sys_path=[os.path.abspath(p) for p in sys.path])
    return _runner.quick_dumps(context) + _function._dumps(task.calls, by_value)


class ArrayJob(Job):
    """A job whose script runs tasks of an Executor: an array of them (``array``) on a
    system that has arrays, else the one task it holds."""

    def __init__(self, tasks: List[Task], deps: List[Task], throttle: Optional[int],
                 **job_args: Any) -> None:
        super().__init__('true', **job_args)
        self.tasks = tasks
        self.depends = list(deps)
        self.throttle = throttle
        self.array = self.system.array_variable is not None
        #: the executor's array before this one, which a throttled array waits for
        self.after: Optional['ArrayJob'] = None
        #: the number of this array's first call among the calls sent with it (a map's
        #: calls split over several arrays go on from one to the next)
        self.first_call = 0
        #: the calls of each task, where its futures do not say (a resubmitted array)
        self.counts: Optional[List[int]] = None

    def _body(self) -> str:
        base = self.target.base
        python = shlex.quote(self.store.python or sys.executable)
        variable, first = self.system.array_variable, self.system.array_first
        index = ((f'"$(({variable} - {first}))"' if first else f'"${variable}"') if self.array
                 else str(self.tasks[0].index))
        command = f'{python} {shlex.quote(base + ".tasks.py")} {shlex.quote(base)} {index}'
        return job_body(command, self.target.exitcode, self.runpath, self.modules,
                        self._attempts(index))

    def _attempts(self, index: str) -> Optional[Attempts]:
        """With ``requeue``: each attempt of a task counts itself in the task's own
        ``<base>.task<i>.attempts`` (the array's ``.attempts`` holds the last count any of
        its tasks wrote), and a task requeued more than ``max_requeues`` times does not
        run; its calls run again from the start (they are not checkpointed)."""
        attempts = requeue.attempts(self)
        if attempts is None:
            return None
        own = shlex.quote(self.target.base + '.task') + index + '.attempts'  # attempts_file
        count = f'printf "%s\\n" "$((CLUSTER_ATTEMPT + 1))" > {own}.$$ && mv -f {own}.$$ {own}'
        return dataclasses.replace(attempts, lines=[*attempts.lines, count], stale=())

    def _write_files(self, files: JobFiles, target: JobFiles, overwrite: bool) -> None:
        for task in self.tasks:
            task.base, task.files, task.store = target.base, files, self.store
        written = node_files(target.base)
        for task in self.tasks:
            written[task.paths[0]] = task.payload
        for path, data in written.items():
            write_atomic(self.store.local(files, path), data)
        super()._write_files(files, target, overwrite)
        self.store.push(files, list(written))

    def _submit_now(self, options: Dict[str, Any]) -> str:
        if self.array:
            options = dict(options, **{ARRAY_OPTION: (len(self.tasks) - 1, self.throttle)})
            before = self.after
            if (self.throttle and before is not None and str(before.id).isdigit()
                    and not all(t.settled for t in before.tasks)):
                options[AFTER_ANY_OPTION] = [before.id]  # throttle: one array at a time
        try:
            with queue.submitting():
                deps = sorted(set(dependency_ids(self.depends, self.system)))
                job_id = self.system.submit(self.target, deps, options)
        except BaseException as exc:
            for task in self.tasks:
                task.landed(None, exc)
            raise
        if job_id.isdigit() or not self.array:  # else not submitted: a failed dependency
            counts = self.counts or [len(t.futures) for t in self.tasks]
            # before any id is given out, so that whoever has one finds its record
            records.submitted(self, job_id, records.call_map(counts, self.first_call))
        ids = task_ids(job_id, len(self.tasks)) if self.array else [job_id]
        for task, task_id in zip(self.tasks, ids):
            self._watcher.track(task_id, None if self.array else self.files, self.store)
            task.cancel_batch = lambda i: self.system.cancel([i])
            task.system = self.system
            task.landed(task_id)
        logger.info('submitted %d task(s) of %s as %s', len(self.tasks), self.name, job_id)
        return job_id


def task_files(job: ArrayJob) -> List[str]:
    """The files of an array's tasks (payloads, results, attempt counts) as the batch
    system sees them."""
    return [path for task in job.tasks if task.base
            for path in (*task.paths, attempts_file(task.base, task.index))]


def attempts_file(base: str, index: Any) -> str:
    """Where task ``index`` with ``requeue`` counts its attempts."""
    return f'{base}.task{index}.attempts'


def submit_batch(tasks: List[Task], deps: List[Task], executor: Any) -> List[ArrayJob]:
    """Submit the tasks as arrays of at most the system's limit (one job per task where
    it has no arrays); returns the jobs."""
    system = executor.system
    size = system.array_limit() if system.array_variable else 1
    jobs: List[ArrayJob] = []
    previous = executor.jobs[-1] if executor.jobs else None
    first_call = 0
    for start in range(0, len(tasks), size):
        part = tasks[start:start + size]
        for index, task in enumerate(part):
            task.index = index
        job = ArrayJob(part, deps, executor.throttle, **executor.job_args(part))
        job.after, previous, job.first_call = previous, job, first_call
        first_call += sum(len(t.futures) for t in part)
        for task in part:
            task.payload = task_payload(task, job.imports, job.store.ships_functions_by_value)
        jobs.append(job.submit())
    return jobs


def submit_calls(tasks: List[Task], deps: List[Task], executor: Any) -> None:
    """Where the system runs calls without scripts (local mode: each task a job of the
    JobQueue, its cores honoured)."""
    options, system = executor.options, executor.system
    store = executor.store
    files = store.claim(options.get('filedir') or os.getcwd(), executor.name_for(tasks),
                        options.get('suffix') or 'cluster', system.name)[0]
    executor.claimed.append(files)
    base = files.base
    after = [str(t.id) for t in deps]
    for index, task in enumerate(tasks):
        task.index, task.base, task.files, task.store = index, base, files, store
        write_atomic(task.paths[0], task_payload(task, options.get('imports') or (), False),
                     sync=False)  # read by a local worker only
        job_id = system.submit_call(_tasks.run_here, (base, index), after, options,
                                    f'{files.name}[{index}]')
        queue.watcher(system).track(job_id)
        task.system = executor.system
        task.cancel_batch = lambda i: executor.system.cancel([i])
        task.landed(job_id)


def read_results(task: Task) -> Optional[list]:
    """The tagged results of a finished task, fetched once; None when it left none."""
    files, result = task.files, task.paths[1]
    task.store.pull(files, [result])
    local = task.store.local(files, result)
    if not os.path.exists(local):
        return None
    task.store.check_private(files, result)
    return _runner.load_pickle(local)[1]

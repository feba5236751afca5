"""An Executor's array found again from its record (:mod:`cluster.job.records`, kind
``"array"``): :class:`RecordedArray`, what :func:`cluster.attach` returns for an array's
id (``123``) or one task's (``123_4``, an Executor future's ``.job.id``).

Its tasks are followed like the Executor's own (:mod:`cluster.job.collect`): a task is
over when the batch system shows it ended, then its result file says what each of its
calls returned or raised; a task that left none fails its calls with its state.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Tuple

from ..batch import JobInfo, State
from ..run.errors import JobError
from ..run.storage import remove_local
from ..script import runner
from ..script.function import RemoteTraceback
from . import records
from .arrays import ArrayJob, attempts_file, node_files, read_results
from .futures import Task

logger = logging.getLogger(__name__)

#: an array task's id as the Executor gives it (Slurm's ``<array id>_<index>``)
TASK_ID = re.compile(r'^(\d+)_(\d+)$')

Tagged = Tuple[Any, ...]


def split_task_id(job_id: str) -> Optional[Tuple[str, int]]:
    """``'123_4'`` -> ``('123', 4)``; None for any other id."""
    match = TASK_ID.match(str(job_id))
    return (match.group(1), int(match.group(2))) if match else None


class RecordedArray:
    """The tasks of a recorded array (all, or the one a task id names), from any later
    process: ``wait``, ``get``, ``results``, ``failed_tasks``, ``cancel``, ``clean``.

    ``get()`` gives the value of the one call when the attached tasks run one call, else
    the list of their calls' values in call order; a call that raised re-raises its
    exception (with the remote traceback). ``get(call=n)`` gives call ``n`` alone (the
    calls are numbered as the Executor was given them: ``map``'s positions).
    """

    is_function = True

    def __init__(self, job: Any, record: Dict[str, Any], index: Optional[int] = None) -> None:
        self.job, self.record, self.record_key = job, record, record['key']
        self.name, self.system, self.store = record['name'], job.system, job.store
        self.map = record['array']
        if index is not None:
            records.calls_of(self.map, index)  # RecordError for a task it has not
        self.indices = list(range(self.map['tasks'])) if index is None else [index]
        self.array_id = record['id']
        self.id = self.task_id(index) if index is not None else self.array_id
        self._override: Optional[JobInfo] = None
        self._results: Dict[int, List[Tagged]] = {}
        for i in self.indices:
            self._watcher.track(self.task_id(i), None, self.store)

    # ids and states ---------------------------------------------------------------------
    def task_id(self, index: int) -> str:
        """The batch id of task ``index`` (the array's own id where each task is a job)."""
        if self.system.array_variable is None:
            return self.array_id
        return f'{self.array_id}_{index}'  # as batch._arrays.task_ids writes them

    @property
    def _watcher(self) -> Any:
        return self.job._watcher

    @property
    def _info(self) -> Optional[JobInfo]:
        """The tasks' state as one (what the last poll knows, without polling)."""
        if self._override is not None:
            return self._override
        info = combined(self.id, [self._watcher.known(self.task_id(i)) for i in self.indices])
        if info is None or info.state is not State.COMPLETED:
            return info
        # every task ended 0, but a call that raised is a failure too (never code 0)
        raised = [i for i in self.indices
                  if any(tagged[0] != 'ok' for tagged in self._stored(i) or ())]
        return info if not raised else JobInfo(
            self.id, State.FAILED, reason=f'{len(raised)} of {len(self.indices)} tasks had '
                                          f'a call raise (first: task {raised[0]})')

    @_info.setter
    def _info(self, info: Optional[JobInfo]) -> None:
        self._override = info

    @property
    def info(self) -> JobInfo:
        self._watcher.refresh()
        return self._info or JobInfo(self.id, State.UNKNOWN)

    @property
    def state(self) -> State:
        return self.info.state

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until every task ended; True when all completed and no call raised."""
        self._watcher.wait([self.task_id(i) for i in self.indices], timeout)
        return not self.failed_tasks()

    def results(self, timeout: Optional[float] = None) -> Dict[int, List[Tagged]]:
        """Task index -> its calls' outcomes, ``('ok', value)`` or ``('error', exc,
        traceback)``; a task that left no result has an error for each call."""
        self._watcher.wait([self.task_id(i) for i in self.indices], timeout)
        return {i: self._task_results(i) for i in self.indices}

    def _stored(self, index: int) -> Optional[List[Tagged]]:
        """Task ``index``'s outcomes from its result file (kept), None while it has none."""
        if index not in self._results:
            task = Task(index, [], self.name)
            task.base, task.files, task.store = self.job.target.base, self.job.files, self.store
            try:
                found = read_results(task)
            except Exception as exc:  # noqa: BLE001 - an unreadable result fails its calls
                found = self._failed(index, f'its result cannot be read: {exc}')
            if found is None:
                return None
            self._results[index] = found
        return self._results[index]

    def _failed(self, index: int, why: str) -> List[Tagged]:
        error = JobError(f'task {index} of {self.name} ({self.task_id(index)}) {why}')
        return [('error', error, '')] * len(records.calls_of(self.map, index))

    def _task_results(self, index: int) -> List[Tagged]:
        found = self._stored(index)
        if found is None:  # asked once the task ended: it left no result
            info = self._watcher.known(self.task_id(index))
            found = self._results[index] = self._failed(
                index, f'ended {info.state if info else State.UNKNOWN}'
                + (f': {info.reason}' if info and info.reason else '')
                + '; its calls left no result')
        return found

    def failed_tasks(self) -> List[int]:
        """The indices of the tasks that had a call raise (their result file says so), or
        that ended without a result (the batch system says they ended)."""
        failed = [i for i in self.indices if self._stored(i) is not None
                  and any(tagged[0] != 'ok' for tagged in self._stored(i))]
        unsettled = [i for i in self.indices if self._stored(i) is None]
        if unsettled:  # a poll older than their end would miss it
            self._watcher.refresh(force=True)
        for index in unsettled:
            info = self._watcher.known(self.task_id(index))
            if info is not None and info.state.final and self._stored(index) is None:
                self._task_results(index)  # no result: its calls fail with the state
                failed.append(index)
        return sorted(failed)

    def attempts(self, index: int) -> Optional[int]:
        """How many attempts task ``index`` of an array with ``requeue`` started (None
        without requeue, or before it started)."""
        text = self.store.read_text(self.job.files, attempts_file(self.job.target.base, index))
        try:
            return int(text.strip()) if text else None
        except ValueError:
            return None

    # values -----------------------------------------------------------------------------
    def get(self, timeout: Optional[float] = None, call: Optional[int] = None) -> Any:
        """The value of the one call (or of call ``call``), else the list of the calls'
        values in order; a call that raised re-raises here."""
        found = self.results(timeout)
        outcomes: List[Tuple[int, Tagged]] = []
        for index in self.indices:
            outcomes += zip(records.calls_of(self.map, index), found[index])
        if call is not None:
            outcomes = [(n, t) for n, t in outcomes if n == call]
            if not outcomes:
                raise JobError(f'{self.id} ({self.name}) runs no call {call}: it runs calls '
                               + ', '.join(_spans([n for i in self.indices
                                                   for n in records.calls_of(self.map, i)])))
        values = [_value(tagged) for _, tagged in outcomes]
        return values[0] if len(values) == 1 else values

    def get_exitcode(self, timeout: Optional[float] = None) -> Optional[int]:
        """0 when every task completed, else the code of the first one that did not."""
        infos = self._watcher.wait([self.task_id(i) for i in self.indices], timeout)
        for info in infos.values():
            if info.state is not State.COMPLETED or info.exitcode:
                return info.exitcode
        return 0

    def get_stdout(self, timeout: Optional[float] = None) -> str:
        """The array's standard output (one file, which all its tasks write)."""
        self.wait(timeout)
        return self.store.read_text(self.job.files, self.job.outfile) or ''

    def get_stderr(self, timeout: Optional[float] = None) -> str:
        self.wait(timeout)
        return self.store.read_text(self.job.files, self.job.errfile) or ''

    # acting on it -----------------------------------------------------------------------
    def cancel(self) -> None:
        """Cancel the attached tasks (all of the array: its id)."""
        whole = len(self.indices) == self.map['tasks']
        self.system.cancel([self.array_id] if whole else [self.task_id(i) for i in self.indices])

    def clean(self, delete_outputs: bool = False) -> None:
        """Delete the array's scripts and its tasks' payloads (their results too with
        ``delete_outputs``), and its record; its tasks must have ended."""
        if len(self.indices) != self.map['tasks']:
            raise JobError(f'clean the whole array {self.array_id}, not its task {self.id}')
        infos = [self._watcher.info(self.task_id(i)) for i in self.indices]
        if not all(info.state.final for info in infos):
            raise JobError(f'array {self.array_id} ({self.name}) still runs: wait() for it, '
                           'or cancel() it and let it end, before clean()')
        target, base = self.job.target, self.job.target.base
        paths = target.scripts() + list(node_files(base))
        for index in self.indices:
            task = Task(index, [], self.name)
            task.base = base
            paths += [task.paths[0]] + ([task.paths[1], attempts_file(base, index)]
                                        if delete_outputs else [])
        if delete_outputs:
            paths += target.outputs() + [self.job.outfile, self.job.errfile]
        self.store.remove(self.job.files, sorted(set(paths)))
        remove_local({self.store.local(self.job.files, p) for p in paths})
        records.remove(self.record_key)

    def __repr__(self) -> str:
        info = self._info
        return (f'<RecordedArray {self.name} {self.system.name} id={self.id} '
                f'tasks={len(self.indices)} {info.state if info else "unknown"}>')


def _value(tagged: Tagged) -> Any:
    if tagged[0] == 'ok':
        return tagged[1]
    error = tagged[1]
    if len(tagged) > 2 and tagged[2]:
        error.remote_traceback = tagged[2]
        error.__cause__ = RemoteTraceback(tagged[2])
    raise error


def _spans(numbers: List[int]) -> List[str]:
    """``[0, 1, 2, 5]`` -> ``['0-2', '5']``."""
    spans: List[List[int]] = []
    for n in numbers:
        if spans and spans[-1][1] == n - 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return [f'{a}-{b}' if a != b else str(a) for a, b in spans]


def combined(job_id: str, infos: List[Optional[JobInfo]]) -> Optional[JobInfo]:
    """The state of several tasks as one: running while any runs, pending while any waits,
    completed when all completed, else failed naming how many did not complete."""
    if not infos or any(info is None for info in infos):
        return None
    states = {info.state for info in infos}
    for state in (State.RUNNING, State.PENDING, State.HELD, State.UNKNOWN):
        if state in states and not state.final:
            return JobInfo(job_id, state)
    if len(infos) == 1:
        return infos[0]
    bad = [info for info in infos if info.state is not State.COMPLETED or info.exitcode]
    if not bad:
        return JobInfo(job_id, State.COMPLETED, exitcode=0)
    return JobInfo(job_id, State.FAILED, exitcode=bad[0].exitcode,
                   reason=f'{len(bad)} of {len(infos)} tasks did not complete '
                          f'(first {bad[0].id}: {bad[0].state})')


def resubmit_array(old: RecordedArray, failed: bool, place: Dict[str, Any]) -> Any:
    """Run tasks of a recorded array again (with ``failed``, only those that did not
    complete or had a call raise; all must have ended) as a new array from their kept
    payloads, with the old options in the old directory and names of its own (the old
    results stay). Its record links to the old one, ``links["tasks"]`` naming the old
    index of each new task. Returns the new, submitted
    ``ArrayJob`` of :mod:`cluster.job.arrays`."""
    record = old.record
    old._watcher.refresh(force=True)
    open_ids = [old.task_id(i) for i in old.indices
                if not old._watcher.info(old.task_id(i)).state.final]
    if open_ids:
        raise JobError(f'array {old.array_id} ({old.name}) has tasks still open '
                       f'({", ".join(open_ids[:5])}): wait for them, or cancel them, '
                       'before resubmitting it')
    chosen = old.failed_tasks() if failed else list(old.indices)
    if not chosen:
        raise JobError(f'array {old.array_id} ({old.name}) has no failed task to resubmit')
    options = {k: v for k, v in record['options'].items() if k not in ('outfile', 'errfile')}
    job_args = dict(options, name=record['name'],
                    path=record['files']['directory'], dir=record['dir'],
                    modules=record['modules'], imports=record['imports'], **place)
    tasks = []
    for new_index, index in enumerate(chosen):
        task = Task(index, [], record['name'])
        task.base = old.job.target.base
        with runner.open_private(old.store.local(old.job.files, task.paths[0])) as handle:
            task.payload = handle.read()  # the old calls, byte for byte, through the checked open
        task.index, task.base = new_index, None
        tasks.append(task)
    job = ArrayJob(tasks, [], None, **job_args)
    job.counts = [len(records.calls_of(old.map, i)) for i in chosen]
    job.links = {'resubmit_of': record['key'], 'resubmitted_as': [], 'tasks': chosen}
    job.submit()
    job.id  # waits for the id, so the new record is written
    if getattr(job, 'record_key', None):
        records.modify(record['key'],
                       lambda r: r['links']['resubmitted_as'].append(job.record_key))
    logger.info('array %s: tasks %s resubmitted as %s', old.array_id,
                ', '.join(_spans(chosen)), job.id)
    return job

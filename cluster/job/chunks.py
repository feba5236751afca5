"""Local mode's ``map``: each chunk of calls is one forked job of the JobQueue.

The forked worker (:mod:`cluster.jobqueue.forked`) has the function and the arguments in
its copy of this process's memory, so nothing is written to disk and nothing is pickled
but the chunk's outcomes, which come back through a pipe as one pickle. A chunk has one
future (:class:`ChunkFuture`), settled by the queue's ``on_done`` callback; ``map``'s
iterator yields each call's value from it in order and re-raises a call's exception at
its position. A chunk whose worker was killed (signal, time limit, cancel) fails every
call of it with the queue's reason.
"""
from __future__ import annotations

import pickle
import traceback
from typing import Any, Callable, Iterator, List, Optional, Sequence

from ..batch import State
from ..run.errors import JobError
from ..script import runner as _runner
from ..script.function import RemoteTraceback
from .futures import JobFuture, Task

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def run_calls(fn: Callable, calls: Sequence[tuple]) -> bytes:
    """In the forked worker: every call of the chunk, as the tagged outcomes' pickle."""
    outcomes: List[tuple] = []
    for args in calls:
        try:
            outcomes.append(('ok', fn(*args)))
        except BaseException as exc:  # the call's own failure, reported at its position
            outcomes.append(_runner._error(exc, traceback.format_exc()))
    try:
        return b'p' + pickle.dumps(outcomes, _PROTOCOL)
    except Exception:
        pass
    import dill  # heavy: dill
    return b'd' + dill.dumps(_runner.picklable_outcomes(outcomes), recurse=True)


def decode(data: bytes) -> List[tuple]:
    """The tagged outcomes :func:`run_calls` pickled."""
    if data[:1] == b'd':
        import dill  # heavy: dill
        return dill.loads(data[1:])
    return pickle.loads(memoryview(data)[1:])


def call_error(tagged: tuple) -> BaseException:
    """The exception of an ``('error', exception, traceback text)`` outcome, with the
    remote traceback attached (``remote_traceback``, and as its cause)."""
    error = tagged[1]
    error.remote_traceback = tagged[2]
    error.__cause__ = RemoteTraceback(tagged[2])
    return error


class ChunkFuture(JobFuture):
    """The future of one chunk of ``map``'s calls; its value is their tagged outcomes."""

    def __init__(self, name: str, system: Any, calls: int) -> None:
        super().__init__(name, system)
        self.calls = calls
        self.queue: Any = None   # the JobQueue that runs it
        self.job_id = 0

    def failed_calls(self) -> int:
        """How many of the (settled) chunk's calls raised."""
        return sum(tagged[0] != 'ok' for tagged in self.result(0))

    def cancel(self) -> bool:
        """Cancel the chunk unless its worker started it."""
        queue_job = self.queue.jobs.get(self.job_id) if self.queue is not None else None
        if queue_job is not None and queue_job.state is not State.PENDING:
            return False
        return super().cancel()


def submit_chunks(executor: Any, fn: Callable, calls: List[tuple], chunksize: int,
                  name: str) -> List[Task]:
    """Queue the calls as forked JobQueue jobs of ``chunksize`` calls, all at once;
    their tasks."""
    system = executor.system
    queue = system.job_queue()
    tasks: List[Task] = []
    for start in range(0, len(calls), chunksize):
        future = ChunkFuture(name, system, min(chunksize, len(calls) - start))
        future.queue = queue
        task = Task(len(tasks), [future], name)
        task.forked, task.system = True, system
        task.cancel_batch = lambda i: system.cancel([i])
        tasks.append(task)
    ids = system.submit_forked(
        run_calls, [(fn, calls[start:start + chunksize])
                    for start in range(0, len(calls), chunksize)],
        executor.options, [f'{name}[{task.index}]' for task in tasks],
        [lambda job, task=task: _settle(task, job) for task in tasks])
    for task, job_id in zip(tasks, ids):
        task.futures[0].job_id = int(job_id)
        task.landed(job_id)
    return tasks


def _settle(task: Task, job: Any) -> None:
    """The queue's callback (its scheduler thread): settle the chunk's future."""
    future = task.futures[0]
    try:
        future.settle(decode(future.queue.get(job.id)))
    except Exception as exc:
        why = f'ended {job.state.value}' + (f': {job.reason}' if job.reason else '')
        if job.state is State.COMPLETED:
            why = f'left a result that cannot be read: {exc!r}'
        future.settle(error=JobError(f'task {task.index} of {task.name} ({job.id}) '
                                     f'{why}; its calls left no result'))
    task.settled = True


def results(futures: List[JobFuture], deadline: Optional[float],
            clock: Callable[[], float]) -> Iterator[Any]:
    """The calls' values chunk by chunk, in order; a call that raised re-raises there."""
    try:
        for future in futures:
            left = None if deadline is None else max(0.0, deadline - clock())
            for tagged in future.result(left):
                if tagged[0] != 'ok':
                    raise call_error(tagged)
                yield tagged[1]
    finally:
        for future in futures:
            future.cancel()

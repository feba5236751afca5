"""The futures of :class:`cluster.Executor`: :class:`JobFuture`, the :class:`~cluster.job.futures.Task` (one
array task: calls run in one process, one result file) it belongs to, and futures given as
arguments, which become dependencies and references the node resolves
(:mod:`cluster.script.tasks`).
"""
from __future__ import annotations

import pickle
import threading
from concurrent.futures import Future, InvalidStateError
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ..run.errors import JobError
from ..script import function as _function
from ..script import tasks as _tasks
from ..script.files import JobFiles

Call = Tuple[Callable, tuple, dict]


class Task:
    """One task of an array (or one job where the system has no arrays): its calls, its
    files, and the batch id once submitted (``123_4``; a local job's number)."""

    def __init__(self, index: int, futures: List['JobFuture'], name: str) -> None:
        self.index = index
        self.futures = futures
        self.name = name
        self.files: Optional[JobFiles] = None   # the job's files here
        self.base: Optional[str] = None          # their common start, as the system sees it
        self.store: Any = None
        self.cancel_batch: Optional[Callable[[str], None]] = None
        self._id: Optional[str] = None
        self._error: Optional[BaseException] = None
        self._submitted = threading.Event()
        self.settled = False
        self.running = False
        self.system: Any = None
        self.calls: List[Call] = []
        self.payload = b''
        self.forked = False  # a chunk of local map: settled by the JobQueue's callback
        for future in futures:
            future.job = self

    @property
    def paths(self) -> Tuple[str, str]:
        """(payload, result) as the batch system sees them."""
        return _tasks.task_paths(self.base, self.index)

    def landed(self, task_id: Optional[str], error: Optional[BaseException] = None) -> None:
        """The submission ended: with the task's id, or with the error that refused it."""
        self._id, self._error = task_id, error
        self._submitted.set()

    @property
    def id(self) -> Optional[str]:
        """The batch id of the task; waits for its submission, raises its error."""
        self._submitted.wait()
        if self._error is not None:
            raise self._error
        return self._id

    @property
    def submitted(self) -> bool:
        """True once the task is in the batch system (waits for its submission; never
        call this in the submission thread itself)."""
        self._submitted.wait()
        return self._error is None

    def cancel(self) -> None:
        """Cancel the task in the batch system once every call of it is cancelled."""
        if all(f.cancelled() for f in self.futures) and self.submitted and not self.settled:
            self.cancel_batch(self._id)

    def __repr__(self) -> str:
        shown = self._id if self._submitted.is_set() else 'submitting'
        return f'<Task {self.name}[{self.index}] id={shown} calls={len(self.futures)}>'


class JobFuture(Future):
    """A ``concurrent.futures.Future`` of one call run by :class:`cluster.Executor`.

    ``job`` is its :class:`~cluster.job.futures.Task` (``job.id`` is the batch id, ``123_4`` for an array task);
    :meth:`cancel` cancels that task in the batch system when it is still pending. A
    JobFuture given as an argument (at any depth of lists, tuples and dicts) or in
    ``Job(..., depends=[...])`` makes the new work wait for it (``afterok``).
    """

    def __init__(self, name: str, system: Any) -> None:
        super().__init__()
        self.name = name
        self.system = system
        self._job: Optional[Task] = None
        self.position = 0
        self.flush: Optional[Callable[[], None]] = None  # sends the gathered calls

    @property
    def job(self) -> Optional[Task]:
        """The :class:`~cluster.job.futures.Task` this call runs in (sending it when it is still gathered)."""
        if self._job is None and self.flush is not None:
            self.flush()
        return self._job

    @job.setter
    def job(self, task: Task) -> None:
        self._job = task

    @property
    def submitted(self) -> bool:
        """True once this call's task is in the batch system (it is sent now when still
        gathered, and waited for), as a dependency check of :class:`~cluster.Job` asks."""
        task = self.job
        return task is not None and task.submitted

    @property
    def id(self) -> Optional[str]:
        """The batch id of this call's task (waits for its submission)."""
        task = self.job
        return None if task is None else task.id

    def cancel(self) -> bool:
        """Cancel the call unless it runs or ran; True when it is cancelled."""
        if not super().cancel():
            return False
        self.set_running_or_notify_cancel()  # what wait() and as_completed() look for
        if self._job is not None:
            self._job.cancel()
        return True

    def settle(self, value: Any = None, error: Optional[BaseException] = None) -> None:
        """Set the outcome unless the future is cancelled or done already."""
        try:
            if error is not None:
                self.set_exception(error)
            else:
                self.set_result(value)
        except InvalidStateError:
            pass

    def __repr__(self) -> str:
        return f'<JobFuture {self.name} {self._state.lower()} task={self._job!r}>'


def replace_futures(value: Any, found: List[JobFuture]) -> Any:
    """``value`` with each JobFuture in it (lists, tuples, dicts, at any depth) replaced by
    the reference the node resolves; the futures go into ``found``."""
    if isinstance(value, JobFuture):
        if value._job is None:
            raise JobError(f'future {value.name} is not submitted yet')
        found.append(value)
        return (_tasks.REF, value.job.paths[1], value.position,
                f'dependency {value.name} (task {value.job.index} of its array)')
    if isinstance(value, list):
        return [replace_futures(item, found) for item in value]
    if isinstance(value, tuple):
        return tuple(replace_futures(item, found) for item in value)
    if isinstance(value, dict):
        return {key: replace_futures(item, found) for key, item in value.items()}
    return value


#: types that hold no future, passed over at once
_PLAIN = frozenset({int, float, str, bytes, bool, type(None), complex})


def has_futures(value: Any) -> bool:
    if type(value) in _PLAIN:
        return False
    if isinstance(value, JobFuture):
        return True
    if isinstance(value, (list, tuple)):
        for item in value:  # a loop, not any(): this runs once per argument of a map
            if type(item) not in _PLAIN and has_futures(item):
                return True
        return False
    if isinstance(value, dict):
        return any(has_futures(item) for item in value.values())
    return False


class PickleCheck:
    """Fails a call at submit when its function or an argument cannot be pickled."""

    def __init__(self, by_value: bool) -> None:
        self.by_value = by_value
        self._functions: Set[int] = set()
        self._kept: Dict[int, Callable] = {}

    def check(self, fn: Callable, args: tuple, kwargs: dict) -> None:
        name = getattr(fn, '__qualname__', repr(fn))
        if id(fn) not in self._functions:
            self._try(fn, f'function {name}')
            self._functions.add(id(fn))
            self._kept[id(fn)] = fn  # the id stays this function's
        for position, arg in enumerate(args):
            self._try(arg, f'argument {position} of {name} ({type(arg).__name__})')
        for key, arg in kwargs.items():
            self._try(arg, f'keyword argument {key!r} of {name} ({type(arg).__name__})')

    def check_all(self, fn: Callable, arguments: List[tuple]) -> bool:
        """Check ``fn``; True when all the argument tuples pickle at once with the
        standard pickler (holding no future), so that no call needs its own check."""
        self.check(fn, (), {})
        try:
            pickle.dumps(arguments)
            return True
        except Exception:
            return False

    def _try(self, obj: Any, what: str) -> None:
        try:
            pickle.dumps(obj)
            return
        except Exception:
            pass
        try:
            _function._dumps(obj, self.by_value)
        except Exception as exc:
            raise JobError(f'cannot pickle the {what}: {type(exc).__name__}: {exc}') from None

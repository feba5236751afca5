"""Job arrays on Slurm's Torque wrappers (``slurm-wlm-torque``): what ``qsub -t`` gives, and
how each task is followed, since the wrappers' ``qstat`` cannot name a task.

Facts of the wrappers, pinned by tests/test_torque_wrapper_arrays.py:

* ``qsub -t 0-K%N`` (or ``-J``) becomes ``sbatch --array='0-K%N'``; qsub prints the array's
  job id, a bare number. In the task, ``SLURM_ARRAY_TASK_ID`` holds the index;
  ``PBS_ARRAYID`` is not set.
* ``qstat -f`` lists Slurm's job records under their plain Slurm job ids: the pending rest
  of an array under the array's id (state Q), each started task under a job id of its own,
  all with the array's ``Job_Name``, and no attribute names a task's index. ``qstat -f
  A_i`` is an unknown id (exit 153). A finished record leaves after MinJobAge.
* ``qdel A_i`` cancels the whole array (the wrapper reads ``A_i`` as the number ``A``).

So an array submitted here is found in the one ``qstat -f`` listing of a poll by its
unique name, and its tasks are named by Slurm's accounting (``sacct``, which has
``A_i``): asked only on the polls where the array's records changed (a task started or
ended) or where the accounting had not caught up with them; a task is cancelled with
``scancel A_i``.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .base import JobInfo, State

logger = logging.getLogger(__name__)

#: an array task's id, ``<array job id>_<index>``
TASK_ID = re.compile(r'^(\d+)_(\d+)$')


def array_of(job_id: str) -> Optional[str]:
    """The array job id of task id ``'123_4'`` (``'123'``); None for any other id."""
    match = TASK_ID.match(str(job_id))
    return match.group(1) if match else None


@dataclasses.dataclass
class _Array:
    name: str
    tasks: List[str]
    #: what qstat showed of the array when the accounting was last asked
    seen: Optional[Tuple[Tuple[str, str], ...]] = None
    #: each task's latest state from the accounting
    known: Dict[str, JobInfo] = dataclasses.field(default_factory=dict)

    def open(self) -> List[str]:
        return [t for t in self.tasks if t not in self.known or not self.known[t].state.final]

    def stale(self, records: Sequence[Mapping[str, str]]) -> bool:
        """The accounting's last answer does not fit what qstat shows now."""
        view = tuple(sorted((r['Job Id'], r.get('job_state', '')) for r in records))
        if view != self.seen:
            return True
        running = sum(1 for r in records if r.get('job_state') == 'R')
        finished = sum(1 for r in records if r.get('job_state') == 'C')
        states = [info.state for info in self.known.values()]
        done = sum(1 for state in states if state.final)
        return states.count(State.RUNNING) > running or done < finished


class WrapperArrays:
    """The arrays of one :class:`~cluster.batch.torque.Torque` on the wrappers, and their
    tasks' states; ``accounting(task_ids)`` is Slurm's ``sacct`` for tasks."""

    def __init__(self, accounting: Callable[[List[str]], Dict[str, JobInfo]]) -> None:
        self.accounting = accounting
        self.arrays: Dict[str, _Array] = {}

    def add(self, array_id: str, name: str, count: int) -> None:
        """An array submitted here: its id, unique name and number of tasks."""
        self.arrays[str(array_id)] = _Array(name, [f'{array_id}_{i}' for i in range(count)])

    def expect(self, task_id: str) -> None:
        """Follow a task of an array submitted elsewhere: named, in :meth:`follow`, by the
        record listed under the array's id."""
        array_id = str(array_of(task_id))
        array = self.arrays.setdefault(array_id, _Array('', []))
        if task_id not in array.tasks:
            array.tasks.append(task_id)

    def follow(self, records: List[Dict[str, str]]) -> Tuple[List[Dict[str, str]],
                                                             Dict[str, JobInfo]]:
        """Split a ``qstat -f`` listing into the records of no array of ours, and one
        :class:`JobInfo` per task of our arrays that qstat still lists (tasks of an array
        qstat no longer lists are left out: the accounting decides them)."""
        for array_id, array in self.arrays.items():
            array.name = array.name or next((r.get('Job_Name', '') for r in records
                                             if r['Job Id'] == array_id), '')
        named = {i: a for i, a in self.arrays.items() if a.name}
        by_name: Dict[str, List[Dict[str, str]]] = {}
        for record in records:
            by_name.setdefault(record.get('Job_Name', ''), []).append(record)
        ours = {a.name for a in named.values()}
        rest = [r for r in records if r.get('Job_Name', '') not in ours]
        listed = {i: a for i, a in named.items() if by_name.get(a.name)}
        for array_id in [i for i in self.arrays if i not in listed]:
            del self.arrays[array_id]  # gone from qstat: the accounting decides its tasks
        ask = [a for a in listed.values() if a.open() and a.stale(by_name[a.name])]
        if ask:
            found = self.accounting([t for a in ask for t in a.open()])
            for array in ask:
                array.seen = tuple(sorted((r['Job Id'], r.get('job_state', ''))
                                          for r in by_name[array.name]))
                array.known.update((t, found[t]) for t in array.tasks if t in found)
        tasks: Dict[str, JobInfo] = {}
        for array in listed.values():
            live = any(r.get('job_state') != 'C' for r in by_name[array.name])
            for task_id in array.tasks:
                tasks[task_id] = dataclasses.replace(array.known[task_id]) \
                    if task_id in array.known else _unnamed(task_id, array.name, live)
        return rest, tasks


def _unnamed(task_id: str, name: str, live: bool) -> JobInfo:
    """A task the accounting does not know (yet): PENDING while its array has a record
    that is not over (it is shown running only once the accounting says so), else over,
    with its outcome left to the accounting (UNKNOWN)."""
    if live:
        return JobInfo(task_id, State.PENDING, name=name)
    return JobInfo(task_id, State.UNKNOWN, name=name,
                   reason='finished; qstat names no array task and shows no exit status')

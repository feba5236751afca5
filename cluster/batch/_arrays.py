"""Job arrays, for the systems that have them: task ids, the compressed forms a scheduler
lists, the ``array`` option a submit command turns into its own argument, and the cache
of a system's array size limit.

An array of ``K + 1`` tasks always has the indices ``0..K`` (Slurm's MaxArraySize caps the
index, not the count, so a long list of calls is split into several arrays that each
start at 0). Task ``i`` of array job ``123`` has the id ``123_4``, as Slurm writes it.
Pending tasks are listed compressed (``123_[4-99%8]``, ``123_[1,3-5]``):
:func:`expand_keys` gives every task its own entry, so the Watcher follows tasks like jobs.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .base import JobInfo, Shell

logger = logging.getLogger(__name__)

#: the option key a job's submit options carry for an array: (last index, throttle or None)
ARRAY_OPTION = 'array'
#: the option key of jobs that must end (in any state) before this one starts: a list of
#: ids (an Executor's throttle chains its arrays so)
AFTER_ANY_OPTION = 'after_any'
_COMPRESSED = re.compile(r'^(\d+)_\[([0-9,\-]+)(?:%\d+)?\]$')


def expand(job_id: str) -> List[str]:
    """``'123_[4-6%2]'`` -> ``['123_4', '123_5', '123_6']``; any other id stays itself."""
    match = _COMPRESSED.match(job_id)
    if not match:
        return [job_id]
    base, ranges = match.groups()
    ids: List[str] = []
    for part in ranges.split(','):
        if not part:
            continue
        first, _, last = part.partition('-')
        ids += [f'{base}_{i}' for i in range(int(first), int(last or first) + 1)]
    return ids


def expand_keys(jobs: Dict[str, JobInfo]) -> Dict[str, JobInfo]:
    """A listing with each compressed array entry replaced by one entry per task."""
    expanded: Dict[str, JobInfo] = {}
    for key, info in jobs.items():
        ids = expand(key)
        if ids == [key]:
            expanded[key] = info
            continue
        for task_id in ids:
            expanded[task_id] = dataclasses.replace(info, id=task_id)
    return expanded


def task_ids(job_id: str, count: int) -> List[str]:
    """The ids of the ``count`` tasks of array job ``job_id``. An id that is not a number
    (a job not submitted because its dependency failed) stands for all its tasks."""
    if not job_id.isdigit():
        return [job_id] * count
    return [f'{job_id}_{i}' for i in range(count)]


def array_spec(options: Optional[Mapping[str, Any]]) -> Optional[str]:
    """``'0-K%T'`` (or ``'0-K'``) for submit options that ask for an array, else None."""
    wanted: Optional[Tuple[int, Optional[int]]] = (options or {}).get(ARRAY_OPTION)
    if not wanted:
        return None
    last, throttle = wanted
    return f'0-{int(last)}' + (f'%{int(throttle)}' if throttle else '')


def cached_limit(system: Any, read: Callable[[Shell], int]) -> int:
    """``read(system.shell)``, asked once per system instance."""
    limit = getattr(system, '_array_limit', None)
    if limit is None:
        limit = system._array_limit = read(system.shell)
        logger.debug('%s arrays hold at most %d tasks', system.name, limit)
    return limit

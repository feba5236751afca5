"""Job arrays, for the systems that have them: task ids, the compressed forms a scheduler
lists, the ``array`` option a submit command turns into its own argument, and the array
size limit.

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


def array_arguments(options: Optional[Mapping[str, Any]],
                    deps: List[str] = ()) -> List[str]:
    """sbatch's ``--array=0-K%T`` for submit options that ask for an array, and its
    ``--dependency=afterok:a:b,afterany:c`` for ``deps`` and the options' ``after_any``."""
    spec = array_spec(options)
    argv = [f'--array={spec}'] if spec else []
    after_any = [str(i) for i in (options or {}).get(AFTER_ANY_OPTION) or ()]
    kinds = ([f'afterok:{":".join(deps)}'] if deps else []) + \
        ([f'afterany:{":".join(after_any)}'] if after_any else [])
    return argv + ([f'--dependency={",".join(kinds)}'] if kinds else [])


def parse_config_value(text: str, key: str) -> Optional[int]:
    """The integer of ``Key = value`` in a ``show config`` listing, else None."""
    match = re.search(rf'^\s*{re.escape(key)}\s*=\s*(\d+)', text, re.MULTILINE)
    return int(match.group(1)) if match else None


def slurm_max_array_size(shell: Shell) -> int:
    """The most tasks an array may have (indices 0..MaxArraySize-1), from one
    ``scontrol show config``; Slurm's default 1001 when it does not say."""
    code, out, err = shell(['scontrol', 'show', 'config'], stdin=None, timeout=60)
    value = parse_config_value(out, 'MaxArraySize') if code == 0 else None
    if value is None:
        logger.warning('MaxArraySize not read from scontrol show config (%s); using 1001',
                       err.strip() or f'exit code {code}')
        return 1001
    return value


def cached_limit(system: Any, read: Callable[[Shell], int]) -> int:
    """``read(system.shell)``, asked once per system instance."""
    limit = getattr(system, '_array_limit', None)
    if limit is None:
        limit = system._array_limit = read(system.shell)
        logger.debug('%s arrays hold at most %d tasks', system.name, limit)
    return limit


def parse_sinfo_cpus(text: str) -> Optional[int]:
    """The usable CPUs of the default partition (else the largest) in ``sinfo -h -o
    '%P %C'`` lines (``debug* 2/0/0/2``: allocated/idle/other/total; other is down or
    drained), else None."""
    found: Dict[str, int] = {}
    default = None
    for line in text.splitlines():
        match = re.match(r'^(\S+)\s+(\d+)/(\d+)/(\d+)/(\d+)\s*$', line.strip())
        if not match:
            continue
        name, _, _, other, total = match.groups()
        if name.endswith('*'):
            name = default = name[:-1]
        found[name] = max(found.get(name, 0), int(total) - int(other))
    if not found:
        return None
    return found[default] if default is not None else max(found.values())


def slurm_slots(system: Any) -> Optional[int]:
    """CPUs the default partition can give at once (one ``sinfo``, once per system
    instance); None when sinfo does not say."""
    if not hasattr(system, '_slots'):
        code, out, err = system.shell(['sinfo', '-h', '-o', '%P %C'], stdin=None, timeout=60)
        system._slots = (parse_sinfo_cpus(out) or None) if code == 0 else None
        if system._slots is None:
            logger.warning('slots not read from sinfo (%s)', err.strip() or f'exit code {code}')
    return system._slots


def slurm_array_limit(system: Any) -> int:
    """Slurm's MaxArraySize, read once per system instance (its ``array_limit``)."""
    return cached_limit(system, slurm_max_array_size)

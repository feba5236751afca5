"""The map from an Executor array's task indices to its calls, as a record keeps it
(:mod:`cluster.job.records`, field ``array``): runs of tasks with as many calls each, so
that its size does not grow with the calls.

``{"tasks": n, "calls": m, "first_call": c, "runs": [[first_index, last_index,
first_call, calls_per_task], ...]}``: task ``i`` of run ``[a, b, f, k]`` runs calls
``f + (i - a) * k`` to ``f + (i - a + 1) * k - 1``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional


def call_map(counts: List[int], first_call: int = 0) -> Dict[str, Any]:
    """The map of an array whose task ``i`` runs ``counts[i]`` calls, numbered on from
    ``first_call`` (a map of 10,000 calls in equal tasks is one run, whatever its size)."""
    runs: List[List[int]] = []
    call = first_call
    for index, count in enumerate(counts):
        if runs and runs[-1][3] == count and runs[-1][1] == index - 1:
            runs[-1][1] = index
        else:
            runs.append([index, index, call, count])
        call += count
    return {'tasks': len(counts), 'calls': call - first_call, 'first_call': first_call,
            'runs': runs}


def calls_of(array: Dict[str, Any], index: int) -> Optional[range]:
    """The call numbers task ``index`` runs; None when the array has no such task."""
    for first, last, call, count in array['runs']:
        if first <= index <= last:
            start = call + (index - first) * count
            return range(start, start + count)
    return None


def problem(array: Any) -> Optional[str]:
    """What is wrong with ``array`` as a map (its runs must cover its tasks and calls in
    order); None when nothing is."""
    try:
        index, call = 0, array['first_call']
        for run in array['runs']:
            first, last, start, count = run
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in run) or not (
                    first == index and last >= first and start == call and count >= 0):
                return f'run {run}'
            index, call = last + 1, call + (last - first + 1) * count
        if index != array['tasks'] or call - array['first_call'] != array['calls']:
            return 'the runs do not cover its tasks and calls'
    except (KeyError, TypeError, ValueError) as exc:
        return f'{type(exc).__name__}: {exc}'
    return None

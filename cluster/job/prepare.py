"""What a :class:`~cluster.job.Job` settles before it is written: its options and name,
its dependencies' ids, the background thread that runs its system's submit commands, and
the reason a job that never ran gives (its failed dependency)."""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .. import config_file
from ..batch import State
from ..options import check_arguments
from ..run.errors import ClusterError, JobError

Command = Union[str, Callable]


def merged_options(profile: Optional[str], kwds: dict) -> dict:
    """Keywords of the default profile < the named profile < the call, normalised."""
    merged = dict(config_file.get_profile('default').args)
    if profile and profile != 'default':
        merged.update(config_file.get_profile(profile).args)
    merged.update(check_arguments(kwds))
    return merged


def default_name(command: Command) -> str:
    if callable(command):
        raw = getattr(command, '__name__', 'function')
    else:
        words = shlex.split(command) if command.strip() else ['job']
        raw = os.path.basename(words[0]) if words else 'job'
    name = re.sub(r'[^A-Za-z0-9_.+-]+', '_', raw).strip('._') or 'job'
    return name[:64]


def where(system: Any) -> str:
    endpoint = getattr(system, 'endpoint', None)
    return f'{system.name} on {endpoint.address}' if endpoint is not None else system.name


def check_dependencies(depends: Sequence[Any], system: Any) -> None:
    """Dependencies that are Jobs must be submitted, and to the same batch system."""
    for dep in depends:
        if hasattr(dep, 'submitted'):  # a Job
            if not dep.submitted:
                raise JobError(f'dependency {dep.name} has not been submitted yet')
            if dep.system is not system:
                raise JobError(f'dependency {dep.name} runs on {where(dep.system)}, '
                               f'not {where(system)}')


def dependency_ids(depends: Sequence[Any], system: Any) -> List[str]:
    check_dependencies(depends, system)
    ids = []
    for dep in depends:
        try:
            ids.append(str(getattr(dep, 'id', dep)))
        except ClusterError as exc:  # the dependency's own submission was refused
            raise JobError(f'dependency {getattr(dep, "name", dep)} was not submitted: '
                           f'{exc}') from exc
    return ids


#: at most this many submissions under way per batch system (one running, one waiting)
PIPELINE_DEPTH = 2
_SUBMITTERS: Dict[tuple, Tuple[ThreadPoolExecutor, threading.BoundedSemaphore]] = {}
_SUBMITTERS_LOCK = threading.Lock()


def submitter(system: Any) -> Tuple[ThreadPoolExecutor, threading.BoundedSemaphore]:
    """One background thread per batch system runs its submit commands in order, so the
    next job's files are written while the previous job's sbatch/qsub runs."""
    key = (os.getpid(), id(system))  # a forked child gets threads of its own
    with _SUBMITTERS_LOCK:
        if key not in _SUBMITTERS:
            _SUBMITTERS[key] = (
                ThreadPoolExecutor(1, thread_name_prefix=f'cluster-submit-{system.name}'),
                threading.BoundedSemaphore(PIPELINE_DEPTH))
        return _SUBMITTERS[key]


def explained(info: Any, depends: Sequence[Any]) -> Any:
    """``info`` (a JobInfo) with a reason naming the failed dependency (a Job of
    ``depends``) of a job that never ran."""
    if info.state not in (State.CANCELLED, State.FAILED) or (
            info.reason and 'depend' not in info.reason.lower()):
        return info
    for dep in depends:
        if not dep.done:
            continue  # only a dependency that has ended can explain it: never wait here
        if dep.info.state is not State.COMPLETED or dep.info.exitcode:
            code = dep.info.exitcode
            return dataclasses.replace(info, reason=(
                f'dependency {dep.name} ({dep.id}) ended {dep.info.state}'
                + (f' with exit code {code}' if code else '')
                + (f': {dep.info.reason}' if dep.info.reason else '')))
    return info

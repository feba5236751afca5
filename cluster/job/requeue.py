"""What ``requeue=True`` means for a :class:`~cluster.job.Job`: checked when the Job is
made, then its batch system's header lines and the body's work at each attempt.

A job with ``requeue`` goes back to the queue when it is preempted or its node fails; a
command then runs again from the start. A function job whose callable has a
``checkpoint(*args, **kwargs)`` method is also asked to checkpoint (SIGUSR2) ``grace``
seconds before its time limit and when it is preempted: the :class:`~cluster.Resume` it
returns is what the next attempt runs (see :mod:`cluster.script.runner`).
"""
from __future__ import annotations

import logging
from typing import Any, List, Mapping, Optional

from .. import batch
from ..batch import BatchSystem
from ..options import OPTIONS
from ..run.errors import ClusterError, OptionError
from ..script.body import Attempts
from . import records

logger = logging.getLogger(__name__)


def check(options: Mapping[str, Any], system: BatchSystem, name: str) -> None:
    """OptionError naming the system when it cannot requeue; a warning when ``grace`` is
    not shorter than the time limit (the job would be asked to checkpoint at once)."""
    if not options.get('requeue'):
        return
    if not system.can_requeue:
        able = [cls.name for cls in batch.systems() if cls.can_requeue]
        raise OptionError(f'job {name}: requeue=True, but {system.name} cannot requeue jobs '
                          f'(systems that can: {", ".join(able) or "none"})')
    limit, grace = options.get('time'), _grace(options)
    if limit:
        hours, minutes, seconds = (int(part) for part in str(limit).split(':'))
        if grace >= hours * 3600 + minutes * 60 + seconds:
            logger.warning('job %s: grace=%d s is not shorter than its time limit %s: it is '
                           'asked to checkpoint as soon as it starts', name, grace, limit)


def check_arrays(options: Mapping[str, Any], system: BatchSystem) -> None:
    """:func:`check` for an Executor, whose array tasks rerun their calls when requeued:
    OptionError naming the system where its array tasks are not requeued so."""
    if options.get('requeue') and system.can_requeue and not system.can_requeue_arrays:
        able = [cls.name for cls in batch.systems() if cls.can_requeue_arrays]
        raise OptionError(f'Executor: requeue=True, but the array tasks of {system.name} are '
                          f'not requeued by the Executor (systems whose are: '
                          f'{", ".join(able) or "none"}); submit such calls as Jobs')
    check(options, system, 'of the Executor')


def _grace(options: Mapping[str, Any]) -> int:
    grace = options.get('grace')
    return int(OPTIONS['grace'].default if grace is None else grace)


def checkpoints(command: Any) -> bool:
    """True for a callable that can checkpoint (it has a ``checkpoint`` method)."""
    return callable(command) and callable(getattr(command, 'checkpoint', None))


def header(job: Any) -> List[str]:
    """The batch system's header lines for the job's ``requeue`` (and ``grace``)."""
    requeue = bool(job.options.get('requeue'))
    grace = _grace(job.options) if requeue and checkpoints(job.command) else None
    return job.system.requeue_header(requeue, grace, job.options.get('time'))


def attempts(job: Any) -> Optional[Attempts]:
    """What the body does at each attempt of a job with ``requeue``; None without."""
    if not job.options.get('requeue'):
        return None
    most = job.options.get('max_requeues')
    target = job.target
    return Attempts(lines=job.system.attempt_lines(),
                    max_requeues=int(OPTIONS['max_requeues'].default if most is None else most),
                    count_file=target.attempts,
                    stale=[target.exitcode] + ([target.pickle_out] if job.is_function else []),
                    checkpoint=target.pickle_resume if checkpoints(job.command) else None)


def attempts_started(job: Any) -> Optional[int]:
    """How many attempts of the job have started (1 until it is requeued); None for a
    job without ``requeue``, or before it starts."""
    text = job.store.read_text(job.files, job.target.attempts) if job.submitted else None
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def settled(job: Any) -> None:
    """Count the attempts of an ended job with ``requeue`` in its record."""
    key = getattr(job, 'record_key', None)
    count = attempts_started(job) if key and job.options.get('requeue') else None
    if count:
        try:
            records.update(key, attempts=count)
        except (ClusterError, OSError) as exc:  # the job's outcome stands all the same
            logger.warning('job %s: its record could not count %d attempts: %s',
                           job.name, count, exc)

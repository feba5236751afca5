"""``afterok`` kept by ``cluster`` itself, for schedulers that cannot be trusted with it.

Slurm forgets a finished job after ``MinJobAge`` and treats a dependency on a job it has
forgotten as satisfied; Grid Engine's ``-hold_jid`` releases a dependent whatever its
parent's outcome. A system with such a scheduler asks :class:`DependencyGate` before each
submit: a job whose dependency is known to have failed is not submitted at all, and gets
an id of the gate's own (``unsubmitted.<name>``) that reports CANCELLED with the reason.
Nothing is then left held in the queue if the driver dies.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from .base import JobInfo, State

if TYPE_CHECKING:
    from .base import BatchSystem

logger = logging.getLogger(__name__)

#: the id prefix of a job never submitted because a dependency had failed
NOT_SUBMITTED = 'unsubmitted.'


def failed_dependency(system: 'BatchSystem', deps: Sequence[str]) -> Optional[str]:
    """Why one of ``deps`` can never be satisfied, or None (unknown counts as fine): one
    status call, and one accounting call for those the queue no longer lists."""
    known = system.statuses(list(deps))
    missing = [d for d in deps if d not in known]
    if missing:
        known.update(system.final_info(missing))
    for dep in deps:
        info = known.get(dep)
        if info is None:
            logger.debug('dependency %s unknown to the queue and the accounting', dep)
        elif info.state.final and (info.state is not State.COMPLETED or info.exitcode):
            detail = f' with exit code {info.exitcode}' if info.exitcode else ''
            return f'dependency {dep} ended {info.state.value}{detail}'
    return None


class DependencyGate:
    """The jobs one system instance did not submit, because a dependency had failed."""

    def __init__(self) -> None:
        #: id given -> the reason
        self.refused: Dict[str, str] = {}

    def refuse(self, system: 'BatchSystem', deps: Sequence[str], unique: str,
               name: str) -> Optional[str]:
        """The gate's id for job ``name`` (submitted as ``unique``) when a dependency has
        failed; None when it may be submitted."""
        why = failed_dependency(system, deps) if deps else None
        if not why:
            return None
        job_id = f'{NOT_SUBMITTED}{unique}'
        self.refused[job_id] = why
        logger.warning('job %s not submitted: %s', name, why)
        return job_id

    def split(self, ids: List[str]) -> Tuple[List[str], Dict[str, JobInfo]]:
        """(the ids to ask the scheduler about, the infos of the refused ones)."""
        refused = {i: JobInfo(id=i, state=State.CANCELLED, reason=self.refused[i])
                   for i in ids if i in self.refused}
        return [i for i in ids if i not in refused], refused

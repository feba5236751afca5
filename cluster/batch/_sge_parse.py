"""What Grid Engine prints, read: ``qstat -xml`` entries, ``qacct -j`` records, the state
codes, array task ranges, and ``max_aj_tasks`` of ``qconf -sconf``.

Arrays: Grid Engine numbers the tasks of ``qsub -t 1-N`` from 1 (``$SGE_TASK_ID``;
'undefined' outside an array). ``cluster`` numbers them from 0 as every array system does
(:mod:`cluster.batch._arrays`): task ``n`` of job ``123`` is ``123_<n-1>``. ``qstat -xml``
lists a running task as an entry of its own (``<tasks>2</tasks>``) and the pending ones
together (``<tasks>1-10:1</tasks>``, or ``<tasks>3,4</tasks>`` once some started);
``qacct -j`` writes one record per task run (``taskid 2``; ``undefined`` for a job).

Accounting: ``qacct``'s ``failed`` decides as much as ``exit_status``: 0 is the script's
own end; 37 a limit qmaster enforced (``h_rt``: TIMEOUT); 100 a signal (``qdel``: exit
137); 25 a requeue (the job runs again); others a failure of execd (26: an output file
could not be opened).
"""
from __future__ import annotations

import logging
import os
import re
import time
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Mapping, Optional, Tuple

from .base import JobInfo, Shell, State
from ._submit import given_name

logger = logging.getLogger(__name__)

#: qacct ``failed`` codes (sge_status(5), execd's failure codes) with a meaning here
FAILED_LIMIT = 37        # qmaster enforced h_rt, h_cpu or h_vmem
FAILED_SIGNAL = 100      # "assumedly after job": the job was killed by a signal
FAILED_RESCHEDULED = 25  # requeued (qmod -rj, or exit 99): the job runs again
#: max_aj_tasks when qconf does not tell (Grid Engine's default)
DEFAULT_MAX_TASKS = 75000
_RANGE = re.compile(r'^(\d+)(?:-(\d+)(?::(\d+))?)?$')


def map_state(native: str, held_is_pending: bool = False) -> State:
    """The shared :class:`State` of a qstat state code (``qw``, ``hqw``, ``r``, ``Eqw``...)."""
    code = (native or '').strip()
    if 'E' in code:
        return State.FAILED              # error state: it never runs unless cleared
    if 'd' in code:
        return State.CANCELLED           # being deleted
    if 's' in code or 'S' in code or 'T' in code:
        return State.HELD                # suspended (by the user, the queue or a threshold)
    if 'h' in code:
        return State.PENDING if held_is_pending else State.HELD
    if 'r' in code or 't' in code:
        return State.RUNNING
    if 'q' in code or 'w' in code:
        return State.PENDING
    logger.debug('unknown grid engine state %r', native)
    return State.UNKNOWN


def parse_qstat_xml(text: str) -> List[Dict[str, str]]:
    """``qstat -xml`` -> one dict of tags per job (``JB_job_number``, ``state``...)."""
    text = text.strip()
    if not text:
        return []
    root = ElementTree.fromstring(text)
    return [{child.tag: (child.text or '').strip() for child in element}
            for element in root.iter('job_list')]


def parse_qacct(text: str) -> List[Dict[str, str]]:
    """``qacct -j`` -> one dict per record, in the order printed (``failed``, ...)."""
    records: List[Dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith('====='):
            records.append({})
        elif records and line.strip():
            key, _, value = line.partition(' ')
            records[-1][key] = ' '.join(value.split())
    return records


def _number(text: Optional[str]) -> Optional[int]:
    """The leading number of ``'100 : assumedly after job'`` or ``'137 (Killed)'``."""
    match = re.match(r'\s*(-?\d+)', text or '')
    return int(match.group(1)) if match else None


def _ctime(text: Optional[str]) -> Optional[float]:
    """Epoch seconds from qacct's ``Wed Dec  2 00:15:57 2026`` (None for '-/-')."""
    try:
        return time.mktime(time.strptime(' '.join((text or '').split()), '%a %b %d %H:%M:%S %Y'))
    except ValueError:
        return None


def accounting_info(record: Mapping[str, str]) -> JobInfo:
    """One qacct record -> :class:`JobInfo` (state from ``failed`` and ``exit_status``)."""
    failed = _number(record.get('failed')) or 0
    status = _number(record.get('exit_status'))
    reason = None
    if failed == FAILED_RESCHEDULED:
        state, status, reason = State.PENDING, None, 'requeued: it runs again'
    elif failed == FAILED_LIMIT:
        state, reason = State.TIMEOUT, f'failed {record.get("failed")}'
    elif failed == 0:
        state = State.COMPLETED if status == 0 else State.FAILED
    else:
        state = State.FAILED
        reason = f'failed {record.get("failed")}' + (
            f' (killed by signal {status - 128})' if failed == FAILED_SIGNAL and status
            and status > 128 else '')
        if status == 0:
            status = None                # execd failed before the script could end
    return JobInfo(id=task_key(record.get('jobnumber', ''), record.get('taskid')),
                   state=state, exitcode=status,
                   name=given_name(record.get('jobname')), user=record.get('owner') or None,
                   node=record.get('hostname') or None, start=_ctime(record.get('start_time')),
                   end=_ctime(record.get('end_time')), reason=reason)


def task_numbers(text: str) -> List[int]:
    """Grid Engine's task list -> its numbers: ``'1-10:3'`` -> 1, 4, 7, 10; ``'3,4'``."""
    numbers: List[int] = []
    for part in (text or '').split(','):
        match = _RANGE.match(part.strip())
        if not match:
            continue
        first, last, step = match.groups()
        numbers += range(int(first), int(last or first) + 1, int(step or 1))
    return numbers


def task_key(job_id: str, task: Optional[str]) -> str:
    """``cluster``'s id of Grid Engine task ``task`` of ``job_id`` (``'7', '1'`` ->
    ``'7_0'``); the job id itself when it is no array task (``undefined``, '')."""
    return f'{job_id}_{int(task) - 1}' if task and task.isdigit() else job_id


def split_key(key: str) -> Tuple[str, Optional[int]]:
    """``'7_0'`` -> ``('7', 1)``: the job and its Grid Engine task number; ``('7', None)``."""
    base, _, index = key.partition('_')
    return (base, int(index) + 1) if index.isdigit() else (key, None)


def listed_keys(job: Mapping[str, str]) -> List[str]:
    """The ids one ``qstat -xml`` entry stands for: a task each, else the job's own."""
    job_id = job.get('JB_job_number', '')
    numbers = task_numbers(job.get('tasks', ''))
    return [task_key(job_id, str(n)) for n in numbers] if numbers else [job_id]


def max_array_tasks(shell: Shell) -> int:
    """``max_aj_tasks`` of the global configuration (``qconf -sconf``, read once per
    system): the most tasks one array may have; 0 there means no limit."""
    code, out, err = shell(['qconf', '-sconf'], stdin=None, timeout=60)
    match = re.search(r'^max_aj_tasks\s+(\d+)', out, re.MULTILINE) if code == 0 else None
    if match is None:
        logger.warning('max_aj_tasks not read from qconf -sconf (%s); using %d',
                       err.strip() or f'exit code {code}', DEFAULT_MAX_TASKS)
        return DEFAULT_MAX_TASKS
    return int(match.group(1)) or DEFAULT_MAX_TASKS


#: what qstat -help (or its complaint about SGE_ROOT) starts with on every Grid Engine
_GRID_ENGINE = re.compile(r'^\s*(SGE|GE|OGS|OGE|UGE|Univa|Altair)\b|SGE_ROOT', re.MULTILINE)


def is_grid_engine(shell: Shell, local: bool) -> bool:
    """True when the ``qsub`` behind ``shell`` (this machine's when ``local``) is Grid
    Engine's: ``qstat -help`` says so (or asks for ``$SGE_ROOT``), or ``$SGE_ROOT`` is set."""
    if local and os.environ.get('SGE_ROOT'):
        return True
    code, out, err = shell(['qstat', '-help'], timeout=30)
    if code != 127 and _GRID_ENGINE.search(out + '\n' + err):
        return True
    if local:
        return False
    code, out, _ = shell(['printenv', 'SGE_ROOT'], timeout=30)
    return code == 0 and bool(out.strip())

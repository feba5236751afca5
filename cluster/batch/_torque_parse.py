"""Parsers of Torque and PBS ``qstat`` output (text and XML), and the mapping of their
job states and exit statuses onto :class:`~cluster.batch.base.State`.
"""
from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Mapping, Optional

from ._commands import parse_ctime, parse_duration
from ._submit import given_name
from .base import JobInfo, State

logger = logging.getLogger(__name__)

#: every Torque and PBS Pro job_state letter -> State. W: waiting for its start time; T: in
#: transit; M: PBS Pro, moved to another server; E: exiting (its exit status may not be
#: final yet); B: PBS Pro, array begun; S, U: suspended; C (Torque), F and X (PBS Pro):
#: finished, whether it completed, failed or was cancelled: the exit status decides
STATES: Dict[str, State] = {
    **dict.fromkeys('QWTM', State.PENDING), **dict.fromkeys('REB', State.RUNNING),
    **dict.fromkeys('HSU', State.HELD), **dict.fromkeys('CFX', State.COMPLETED),
}
#: Torque's negative exit statuses (pbs_mom could not run, or killed, the job)
_EXEC_CODES = {
    -1: 'JOB_EXEC_FAIL1', -2: 'JOB_EXEC_FAIL2', -3: 'JOB_EXEC_RETRY', -4: 'JOB_EXEC_INITABT',
    -5: 'JOB_EXEC_INITRST', -6: 'JOB_EXEC_INITRMG', -7: 'JOB_EXEC_BADRESRT'}
TORQUE_EXEC_CODES: Dict[int, str] = {
    **_EXEC_CODES, -8: 'JOB_EXEC_CMDFAIL', -9: 'JOB_EXEC_STDOUTFAIL', -10: 'JOB_EXEC_OVERLIMIT_MEM',
    -11: 'JOB_EXEC_OVERLIMIT_WT', -12: 'JOB_EXEC_OVERLIMIT_CPUT',
    -13: 'JOB_EXEC_RETRY_CGROUP', -14: 'JOB_EXEC_RETRY_PROLOGUE',
}
#: PBS Pro's negative exit statuses
PBSPRO_EXEC_CODES: Dict[int, str] = {
    **_EXEC_CODES, -10: 'JOB_EXEC_FAILUID', -11: 'JOB_EXEC_RERUN', -12: 'JOB_EXEC_CHKP',
    -13: 'JOB_EXEC_FAIL_PASSWORD', -14: 'JOB_EXEC_RERUN_ON_SIS_FAIL', -15: 'JOB_EXEC_QUERST',
    -16: 'JOB_EXEC_FAILHOOK_RERUN', -17: 'JOB_EXEC_FAILHOOK_DELETE', -18: 'JOB_EXEC_HOOK_RERUN',
    -19: 'JOB_EXEC_HOOK_DELETE', -20: 'JOB_EXEC_RERUN_MS_FAIL', -25: 'JOB_EXEC_KILL_NCPUS_SUM',
    -27: 'JOB_EXEC_KILL_MEM', -29: 'JOB_EXEC_KILL_WALLTIME',
}
_WALLTIME_CODES = {'torque': -11, 'pbspro': -29}
#: qstat's exit code for an unknown job id (Torque, and the Slurm wrappers)
UNKNOWN_JOB_EXIT = 153

_HEAD_RE = re.compile(r'^Job Id:\s*(\S+)')
#: 'name = value' (qstat puts spaces around '='; wrapped continuation lines have none)
_ATTR_RE = re.compile(r'^\s+([A-Za-z_][\w.]*) = ?(.*)$')


def map_state(letter: str) -> State:
    """The shared :class:`State` for a job_state letter (before the exit status is read)."""
    state = STATES.get((letter or '').strip().upper())
    if state is None:
        logger.debug('unknown torque/pbs job state %r', letter)
        return State.UNKNOWN
    return state


def parse_qstat_f(text: str) -> List[Dict[str, str]]:
    """Split ``qstat -f`` text into one attribute dict per job (key ``Job Id`` included).

    Long values that qstat wraps onto tab-indented continuation lines are joined.
    """
    jobs: List[Dict[str, str]] = []
    current: Optional[Dict[str, str]] = None
    last_key = None
    for line in text.splitlines():
        head = _HEAD_RE.match(line)
        if head:
            current = {'Job Id': head.group(1)}
            jobs.append(current)
            last_key = None
            continue
        if current is None or not line.strip():
            continue
        attr = _ATTR_RE.match(line)
        if attr:
            last_key = attr.group(1)
            current[last_key] = attr.group(2).strip()
        elif last_key is not None and line[:1] in ('\t', ' '):
            current[last_key] += line.strip()
    return jobs


def parse_qstat_xml(text: str) -> List[Dict[str, str]]:
    """Parse Torque's ``qstat -x`` XML into attribute dicts like :func:`parse_qstat_f`.

    Nested elements become dotted keys (``Resource_List.walltime``). Empty output is
    no jobs (Torque before 6.1 printed nothing when the queue was empty).
    """
    text = text.strip()
    if not text:
        return []
    root = ElementTree.fromstring(text)
    jobs = []
    for element in root.iter('Job'):
        attrs: Dict[str, str] = {}
        for child in element:
            if len(child):
                for grandchild in child:
                    attrs[f'{child.tag}.{grandchild.tag}'] = (grandchild.text or '').strip()
            else:
                attrs[child.tag] = (child.text or '').strip()
        attrs['Job Id'] = attrs.pop('Job_Id', '')
        jobs.append(attrs)
    return jobs


def _nodes(exec_host: Optional[str]) -> Optional[str]:
    """'n1/0+n1/1+n2/0' or 'n1/0*2' -> 'n1,n2'."""
    if not exec_host:
        return None
    hosts: List[str] = []
    for part in exec_host.split('+'):
        host = part.split('/', 1)[0].strip()
        if host and host not in hosts:
            hosts.append(host)
    return ','.join(hosts) or None


def job_info(attrs: Mapping[str, str], flavour: str = 'torque') -> JobInfo:
    """One job's attributes (from text or XML) -> :class:`JobInfo`."""
    state = map_state(attrs.get('job_state', ''))
    raw = attrs.get('exit_status', attrs.get('Exit_status'))
    status: Optional[int] = None
    try:
        status = int(raw) if raw not in (None, '') else None
    except ValueError:
        logger.debug('unparsed exit status %r', raw)
    exitcode, reason = None, None
    if state is State.COMPLETED and status is not None:
        state, exitcode, reason = _final(status, attrs, flavour)
    owner = attrs.get('Job_Owner') or attrs.get('euser') or ''
    user = owner.split('@', 1)[0].split('(', 1)[0] or None
    start = parse_ctime(attrs.get('start_time') or attrs.get('stime') or '')
    end = parse_ctime(attrs.get('comp_time') or attrs.get('obittime') or '')
    return JobInfo(id=attrs.get('Job Id', ''), state=state, exitcode=exitcode,
                   name=given_name(attrs.get('Job_Name')), user=user,
                   node=_nodes(attrs.get('exec_host')),
                   start=start, end=end if state.final else None,
                   reason=reason or attrs.get('comment') or None)


def _final(status: int, attrs: Mapping[str, str], flavour: str):
    """(state, exit code, reason) of a finished job from its exit status."""
    if status == 0:
        return State.COMPLETED, 0, None
    codes = PBSPRO_EXEC_CODES if flavour == 'pbspro' else TORQUE_EXEC_CODES
    if status < 0:
        name = codes.get(status, 'unknown exec code')
        if status == _WALLTIME_CODES.get(flavour, -11):
            return State.TIMEOUT, None, f'{name} ({status}): walltime exceeded'
        return State.FAILED, None, f'{name} ({status})'
    signal = None
    if status > 256:
        signal = status - 256           # Torque: 256 + signal
    elif 128 < status < 254 and flavour == 'pbspro':
        signal = status % 128           # PBS Pro: 128 + signal
    if signal is None:
        return State.FAILED, status, None
    used = parse_duration(attrs.get('resources_used.walltime'))
    limit = parse_duration(attrs.get('Resource_List.walltime'))
    if used is not None and limit and used >= limit:
        return State.TIMEOUT, 128 + signal, f'killed by signal {signal} after its walltime'
    return State.FAILED, 128 + signal, f'killed by signal {signal}'

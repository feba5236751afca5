"""Grid Engine (Son of Grid Engine, Univa/Altair GE): ``qsub -terse`` submits, one
``qstat -xml`` call tracks every job of the user, ``qacct`` settles the ones that left the
queue, ``qdel`` cancels.

Header: ``#$`` lines, always ``-S /bin/bash`` (queues often run ``posix_compliant`` with
``/bin/sh``, which ignores ``#!``). Cores are slots of a parallel environment
(``-pe <pe> N``); memory is a per-slot resource (``-l <memory>=M``: the job's ``mem``
divided by its cores). The parallel environment and the memory resource are the
``[sge]`` settings ``pe`` and ``memory`` of ``~/.cluster`` (defaults ``smp`` and
``mem_free``; ``h_vmem`` is a hard ``ulimit -v`` on most sites).

Dependencies: ``-hold_jid`` releases a dependent when its parent ends, whether it failed
or not. ``afterok`` is therefore kept by ``cluster``: the gate
(:mod:`cluster.batch._dependencies`) does not submit a job whose parent already failed,
and the script of a job submitted after parents of this instance checks their exit-code
files before it runs anything (their ``id path`` pairs are the script's arguments). A
dependent stopped there exits :data:`DEPENDENCY_EXIT` without writing its own code file,
and is reported CANCELLED ("dependency N failed").

Accounting: ``qacct``'s ``failed`` decides as much as ``exit_status``: 0 is the script's
own end; 37 a limit qmaster enforced (``h_rt``: TIMEOUT); 100 a signal (``qdel``: exit
137); 25 a requeue (the job runs again); others a failure of execd (26: an output file
could not be opened).
"""
from __future__ import annotations

import getpass
import logging
import re
import shlex
import time
import xml.etree.ElementTree as ElementTree
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

from .. import config_file
from . import SETTINGS
from ..run.errors import CommandError
from ..script.files import MARKER, JobFiles
from .base import BatchSystem, JobInfo, Shell, State, local_shell
from ._commands import (begin_stamp, connection_problem, header_options, is_grid_engine,
                        last_line, output_paths, parse_iso, run_retried)
from ._dependencies import DependencyGate
from ._submit import given_name, submit_once, unique_name

logger = logging.getLogger(__name__)

#: exit status of a job script that did not run because a dependency failed
DEPENDENCY_EXIT = 86
#: seconds the script waits for a dependency's exit-code file to appear (shared file systems)
CODE_FILE_WAIT = 10
#: qacct ``failed`` codes (sge_status(5), execd's failure codes) with a meaning here
FAILED_LIMIT = 37        # qmaster enforced h_rt, h_cpu or h_vmem
FAILED_SIGNAL = 100      # "assumedly after job": the job was killed by a signal
FAILED_RESCHEDULED = 25  # requeued (qmod -rj, or exit 99): the job runs again
_QACCT_NOT_FOUND = re.compile(r'job (id|name) .* not found')


def _setting(key: str) -> str:
    """The ``[sge]`` setting ``key`` of ~/.cluster (``pe``, ``memory``), or its default
    (:data:`cluster.batch.SETTINGS`); read each time a header is written."""
    return config_file.get('sge', key) or SETTINGS['sge'][key]


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
    return JobInfo(id=record.get('jobnumber', ''), state=state, exitcode=status,
                   name=given_name(record.get('jobname')), user=record.get('owner') or None,
                   node=record.get('hostname') or None, start=_ctime(record.get('start_time')),
                   end=_ctime(record.get('end_time')), reason=reason)


def _job_id(out: str) -> str:
    """The job id of ``qsub -terse`` output: ``17`` or, for an array, ``17.1-5:1``."""
    return last_line(out).split('.', 1)[0]


def _dependency_check(wait: int = CODE_FILE_WAIT) -> List[str]:
    """Script lines that stop the job unless every ``id path`` pair of its arguments names
    an exit-code file holding 0 (afterok; ``-hold_jid`` only waits for the end)."""
    return [
        '# afterok, kept by cluster: -hold_jid releases this job whatever its dependencies did',
        'while [ "$#" -ge 2 ]; do',
        f'  _cluster_wait={wait}',
        '  while [ ! -e "$2" ] && [ "$_cluster_wait" -gt 0 ]; do',
        '    sleep 1; _cluster_wait=$((_cluster_wait - 1)); done',
        '  if [ "$(cat -- "$2" 2>/dev/null)" != 0 ]; then',
        '    echo "cluster: dependency $1 failed; this job did not run" >&2',
        f'    exit {DEPENDENCY_EXIT}',
        '  fi',
        '  shift 2',
        'done',
    ]


class GridEngine(BatchSystem):
    """A Grid Engine cluster; commands go through :attr:`shell` (local or remote)."""

    name = 'sge'
    submit_command = 'qsub'
    submission_ext = '.sge'
    prefix = '#$'
    directives = {
        'cores': '-pe smp {}', 'mem': '-l mem_free={}M', 'time': '-l h_rt={}',
        'features': '-l {}', 'partition': '-q {}', 'account': '-A {}', 'name': '-N {}',
        'export': '-v {}', 'begin': '-a {}', 'outfile': '-o {}', 'errfile': '-e {}',
    }
    help_note = ('On sge, cores are slots of the parallel environment [sge] pe (default smp) '
                 'and mem is split over them as the per-slot resource [sge] memory (default '
                 'mem_free); every script runs with -S /bin/bash; nodes and qos do not exist.')

    def __init__(self, shell: Shell = local_shell, user: Optional[str] = None,
                 endpoint: Any = None) -> None:
        super().__init__(shell, user, endpoint)
        self._gate = DependencyGate()
        self._cancelled: Set[str] = set()
        #: ids deleted here because they sat in an error state (they stay FAILED)
        self._errored: Set[str] = set()
        #: id -> exit-code file of the jobs submitted here with this package's body
        self._codes: Dict[str, str] = {}
        #: id -> its dependencies, and when it was submitted (epoch seconds)
        self._deps: Dict[str, List[str]] = {}
        self._submitted_at: Dict[str, float] = {}

    @classmethod
    def found(cls, shell: Shell = local_shell) -> bool:
        """``qsub`` is on the PATH behind ``shell`` and it is Grid Engine's."""
        return super().found(shell) and is_grid_engine(shell, shell is local_shell)

    # header --------------------------------------------------------------------------------
    @classmethod
    def arguments(cls, name: str, value: Any) -> List[str]:
        """Cores as slots of the configured parallel environment; ``begin`` in ``-a``
        form; ``export`` ALL as ``-V``, NONE as nothing."""
        if name == 'cores':
            return [f'-pe {_setting("pe")} {int(value)}']
        if name == 'begin':
            value = begin_stamp(value)
        elif name == 'export':
            items = value.split(',')
            rest = ','.join(item for item in items if item not in ('ALL', 'NONE'))
            return (['-V'] if 'ALL' in items else []) + (
                super().arguments(name, rest) if rest else [])
        return super().arguments(name, value)

    @classmethod
    def directive_lines(cls, options: Mapping[str, Any]) -> List[str]:
        """``-S /bin/bash`` first; memory per slot as the configured resource."""
        options = dict(options)
        mem, cores = options.pop('mem', None), options.get('cores') or 1
        lines = [f'{cls.prefix} -S /bin/bash'] + super().directive_lines(options)
        if mem is not None:
            per_slot = -(-int(mem) // int(cores))
            lines.append(f'{cls.prefix} -l {_setting("memory")}={per_slot}M')
        return lines

    def render_header(self, options: Mapping, files: JobFiles) -> List[str]:
        """``#$`` lines; output paths a header cannot hold go on qsub's command line."""
        ignored = {k: options.get(k) for k in ('nodes', 'qos') if options.get(k) not in (None, 1)}
        for key, value in ignored.items():
            logger.warning('job %s: %s=%s has no Grid Engine form and is ignored',
                           files.name, key, value)
        return super().render_header(header_options(options), files)

    def render_scripts(self, files: JobFiles, header: Sequence[str], body: str) -> Dict[str, str]:
        """One script: the marker, the ``#$`` lines, the dependency check, the body."""
        body = body[len(MARKER) + 1:] if body.startswith(MARKER + '\n') else body
        lines = ['#!/bin/bash', MARKER, *header, *_dependency_check(), body]
        return {files.submission: '\n'.join(lines) + '\n'}

    # submission ----------------------------------------------------------------------------
    def submit(self, files: JobFiles, dependencies: Sequence[str] = (),
               options: Optional[Mapping] = None) -> str:
        """``qsub -terse -N <unique> [-hold_jid a,b] -o <out> -e <err> <script> [id path]...``.

        A job whose dependency already failed is not submitted (the gate's id comes back);
        the ``id path`` pairs name the exit-code files the script checks (see above)."""
        deps = [str(d) for d in dependencies]
        name = unique_name(files.name)
        refused = self._gate.refuse(self, deps, name, files.name)
        if refused:
            return refused
        outfile, errfile = output_paths(options)
        argv = ['qsub', '-terse', '-N', name]
        argv += ['-hold_jid', ','.join(deps)] if deps else []
        argv += ['-o', outfile or files.outfile, '-e', errfile or files.errfile, files.submission]
        if files.script is None:
            argv += [part for dep in deps if dep in self._codes
                     for part in (dep, self._codes[dep])]
        job_id = submit_once(self.shell, argv, name, _job_id, self._find,
                             timeout=self.status_timeout, deadline=self.lookup_deadline,
                             backoff=self.backoff, hint=f'qstat -xml; qacct -j {name}')
        if files.script is None:
            self._codes[job_id] = files.exitcode
        self._deps[job_id] = deps
        self._submitted_at[job_id] = time.time()
        logger.debug('qsub %s -> %s', files.submission, job_id)
        return job_id

    def _find(self, name: str) -> Optional[List[str]]:
        """Ids of the jobs named ``name``: in qstat's listing, else in qacct's records;
        None when qmaster cannot answer now."""
        code, out, _ = self.shell(self._qstat(), stdin=None, timeout=self.status_timeout)
        if code != 0:
            return None
        try:
            ids = [job['JB_job_number'] for job in parse_qstat_xml(out)
                   if job.get('JB_name') == name]
        except ElementTree.ParseError:
            return None
        if ids:
            return ids
        code, out, err = self.shell(['qacct', '-j', name], stdin=None, timeout=self.status_timeout)
        if code != 0:
            return [] if _QACCT_NOT_FOUND.search(out + err) else None
        return [record.get('jobnumber', '') for record in parse_qacct(out)]

    # status --------------------------------------------------------------------------------
    def _qstat(self, user: Optional[str] = None) -> List[str]:
        return ['qstat', '-xml', '-u', user or self.user or getpass.getuser()]

    def statuses(self, job_ids: Optional[Sequence[str]] = None,
                 user: Optional[str] = None) -> Dict[str, JobInfo]:
        """One ``qstat -xml -u <user>`` call: the listed ids, or every job of the user."""
        refused: Dict[str, JobInfo] = {}
        ids = None
        if job_ids is not None:
            ids, refused = self._gate.split([str(i) for i in job_ids])
            if not ids:
                return refused
        argv = self._qstat(user)
        _, out, err = run_retried(self.shell, argv, tries=self.status_tries,
                                  timeout=self.status_timeout, backoff=self.backoff)
        try:
            listed = parse_qstat_xml(out)
        except ElementTree.ParseError as exc:
            raise CommandError(argv, 0, out, err, message=f'unreadable qstat XML: {exc}')
        jobs = {}
        for job in listed:
            info = self._listed_info(job)
            if ids is None or info.id in ids:
                jobs[info.id] = info
        self._cancel_errors(jobs)
        jobs.update(refused)
        return jobs

    def _listed_info(self, job: Mapping[str, str]) -> JobInfo:
        job_id = job.get('JB_job_number', '')
        state = map_state(job.get('state', ''), held_is_pending=bool(self._deps.get(job_id)))
        if job_id in self._errored:
            state = State.FAILED
        elif state is State.CANCELLED and job_id not in self._cancelled:
            state = State.RUNNING        # deleted by someone else: qacct will say how it ended
        return JobInfo(id=job_id, state=state, name=given_name(job.get('JB_name')),
                       user=job.get('JB_owner') or None,
                       node=(job.get('queue_name') or '').partition('@')[2] or None,
                       start=parse_iso(job.get('JAT_start_time', '')),
                       reason=f'error state {job.get("state")}: qstat -j {job_id} says why'
                       if state is State.FAILED else None)

    def _cancel_errors(self, jobs: Dict[str, JobInfo]) -> None:
        """Delete (once) the jobs submitted here that sit in an error state (Eqw): they
        never run unless an administrator clears them, and they stay FAILED."""
        stuck = [i for i, info in jobs.items() if info.state is State.FAILED
                 and i in self._submitted_at and i not in self._errored]
        if stuck:
            logger.warning('grid engine jobs %s are in an error state; deleting them',
                           ', '.join(stuck))
            self._errored.update(stuck)
            self._delete(stuck)

    def final_info(self, job_ids: Sequence[str]) -> Dict[str, JobInfo]:
        """Accounting of the jobs that left the queue: one ``qacct`` call (``-j ID`` for
        one job, every record of the user that ended since the oldest of them otherwise)."""
        ids, found = self._gate.split([str(i) for i in job_ids])
        ids = [i for i in ids if i.isdigit()]
        if not ids:
            return found
        if len(ids) == 1:
            argv = ['qacct', '-j', ids[0]]
        else:
            # a day before the oldest submit: the cluster's clock may be in another zone
            since = min(self._submitted_at.get(i, time.time() - 86400) for i in ids)
            argv = ['qacct', '-o', self.user or getpass.getuser(), '-E', '-b',
                    time.strftime('%Y%m%d%H%M.%S', time.localtime(since - 86400)), '-j']
        code, out, err = self.shell(argv, stdin=None, timeout=self.status_timeout)
        if code != 0 and not _QACCT_NOT_FOUND.search(out + err):
            logger.warning('qacct failed (exit %s): %s', code, (err or out).strip()[:300])
            return found
        for record in parse_qacct(out):   # the last record of a job is its latest run
            info = self._judged(accounting_info(record))
            if info.id in ids:
                found[info.id] = info
        return found

    def _judged(self, info: JobInfo) -> JobInfo:
        """Apply what only this instance knows: its cancellations and dependency checks."""
        if info.id in self._errored:
            info.state = State.FAILED
        elif info.id in self._cancelled and info.state is not State.COMPLETED:
            info.state, info.reason = State.CANCELLED, info.reason or 'cancelled with qdel'
        elif (info.state is State.FAILED and info.exitcode == DEPENDENCY_EXIT
              and self._deps.get(info.id) and info.reason is None):
            info.state, info.exitcode = State.CANCELLED, None
            info.reason = (f'dependency {" or ".join(self._deps[info.id])} failed: '
                           'the job did not run')
        return info

    def cancel(self, job_ids: Sequence[str]) -> None:
        """``qdel`` the jobs; an id that is already finished or gone is not an error."""
        ids = [str(i) for i in job_ids if str(i) not in self._gate.refused]
        if ids:
            self._delete(ids)

    def _delete(self, ids: List[str]) -> None:
        self._cancelled.update(i for i in ids if i not in self._errored)
        code, out, err = run_retried(self.shell, ['qdel', *ids], tries=self.status_tries,
                                     timeout=self.status_timeout, backoff=self.backoff,
                                     retry=connection_problem,
                                     accept=lambda result: not connection_problem(result))
        if code != 0:
            alive = [i for i, info in self.statuses(ids).items() if not info.state.final]
            if alive:
                raise CommandError(['qdel', *ids], code, out, err,
                                   message=f'jobs {", ".join(alive)} still queued or running')

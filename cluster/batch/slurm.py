"""Slurm: ``sbatch`` submits, one ``squeue`` call tracks every job, ``sacct`` settles them.

A job is two scripts: the submission script (``.sbatch``: ``#SBATCH`` header and one
line) runs the exec script (``.script``: the job body) with ``bash``. The body runs
once, on the first node of the allocation; a multi-node command uses ``srun`` itself.

Slurm forgets a finished job after ``MinJobAge``, and it treats a dependency on a job it
has forgotten as satisfied: :meth:`Slurm.submit` therefore asks the
:class:`~cluster.batch._dependencies.DependencyGate` first.

Every submission carries a unique job name, by which a submit of unknown outcome is
looked up (see :mod:`cluster.batch._submit`).
"""
from __future__ import annotations

import logging
import re
import shlex
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

from ..run.errors import CommandError
from ..script.files import MARKER, JobFiles
from .base import BatchSystem, JobInfo, Shell, State, local_shell
from ._commands import (connection_problem, field, header_options, output_paths, parse_iso,
                        run_retried, wait_status)
from ._arrays import expand_keys
from ._slurm_arrays import array_arguments, slurm_array_limit, slurm_slots
from ._dependencies import DependencyGate
from . import _slurm_requeue
from ._submit import Undecidable, given_name, submit_once, unique_name

logger = logging.getLogger(__name__)

#: every Slurm job state (long names of squeue %T and sacct State) -> State. CONFIGURING:
#: nodes booting; COMPLETING: the script ended, the epilog runs; REVOKED: a federation
#: sibling ran it; DEADLINE: --deadline reached
STATES: Dict[str, State] = {
    **dict.fromkeys(('PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_FED'), State.PENDING),
    **dict.fromkeys(('RUNNING', 'COMPLETING', 'RESIZING', 'SIGNALING', 'STAGE_OUT'),
                    State.RUNNING),
    'COMPLETED': State.COMPLETED,
    **dict.fromkeys(('FAILED', 'NODE_FAIL', 'BOOT_FAIL', 'OUT_OF_MEMORY', 'SPECIAL_EXIT'),
                    State.FAILED),
    **dict.fromkeys(('CANCELLED', 'PREEMPTED', 'REVOKED'), State.CANCELLED),
    **dict.fromkeys(('TIMEOUT', 'DEADLINE'), State.TIMEOUT),
    **dict.fromkeys(('SUSPENDED', 'STOPPED', 'REQUEUE_HOLD', 'RESV_DEL_HOLD'), State.HELD),
}
#: squeue's compact codes (%t) -> the long names above
SHORT_CODES: Dict[str, str] = {
    'PD': 'PENDING', 'CF': 'CONFIGURING', 'RQ': 'REQUEUED', 'RF': 'REQUEUE_FED',
    'R': 'RUNNING', 'CG': 'COMPLETING', 'RS': 'RESIZING', 'SI': 'SIGNALING',
    'SO': 'STAGE_OUT', 'CD': 'COMPLETED', 'F': 'FAILED', 'NF': 'NODE_FAIL',
    'BF': 'BOOT_FAIL', 'OOM': 'OUT_OF_MEMORY', 'SE': 'SPECIAL_EXIT', 'CA': 'CANCELLED',
    'PR': 'PREEMPTED', 'RV': 'REVOKED', 'TO': 'TIMEOUT', 'DL': 'DEADLINE',
    'S': 'SUSPENDED', 'ST': 'STOPPED', 'RH': 'REQUEUE_HOLD', 'RD': 'RESV_DEL_HOLD',
}
#: pending reasons that mean a hold
HELD_REASONS = frozenset({'JobHeldUser', 'JobHeldAdmin'})
#: a pending reason that means the job can never start (without kill_invalid_depend)
NEVER_REASON = 'DependencyNeverSatisfied'
#: pending reasons that cannot clear without a changed request or configuration: such a
#: job FAILS with the reason (and is cancelled) instead of pending forever
NEVER_START: Dict[str, str] = {
    'PartitionConfig': 'it asks for more than its partition can ever give',
    'BadConstraints': 'its constraints can never be satisfied',
    'InvalidAccount': 'its account is invalid',
    'InvalidQOS': 'its QOS is invalid',
    'AccountNotAllowed': 'its account may not use the partition',
    'QOSNotAllowed': 'its QOS may not use the partition',
}
#: what a Slurm job id looks like (array and het job ids included)
_JOB_ID = re.compile(r'^\d+([_+]\d+)?$')

#: squeue fields, '|'-separated; the job name goes last since it may hold anything
SQUEUE_FORMAT = '%i|%T|%r|%u|%N|%S|%e|%j'
#: sacct fields for --parsable2 ('|'-separated); no JobName: slurmdbd may record
#: 'allocation' there instead of the name given
SACCT_FIELDS = 'JobID,State,ExitCode,Reason,User,NodeList,Start,End'


def warn_rounded_time(limit: Any, name: str) -> None:
    """Slurm counts time limits in whole minutes: say so when a normalised ``HH:MM:SS``
    limit has seconds."""
    try:
        hours, minutes, seconds = (int(part) for part in str(limit).split(':'))
    except (ValueError, TypeError):
        return                               # no limit
    if seconds:
        total = hours * 60 + minutes + 1
        logger.warning('job %s: time %s is rounded up by Slurm to whole minutes: %02d:%02d:00',
                       name, limit, total // 60, total % 60)


def map_state(native: str) -> State:
    """The shared :class:`State` for a Slurm state ('CANCELLED by 0' and 'CD' included)."""
    word = (native or '').split(' ', 1)[0].rstrip('+').upper()
    word = SHORT_CODES.get(word, word)
    state = STATES.get(word)
    if state is None:
        logger.debug('unknown slurm state %r', native)
        return State.UNKNOWN
    return state


def parse_exitcode(text: str) -> Optional[int]:
    """``'code:signal'`` -> the exit code, or 128 + signal when a signal ended the job."""
    try:
        code, _, signal = (text or '').strip().partition(':')
        code_num, signal_num = int(code), int(signal or 0)
    except ValueError:
        return None
    return 128 + signal_num if signal_num else code_num


def _job_state(state: State, reason: Optional[str]) -> State:
    if state is State.PENDING and reason in HELD_REASONS:
        return State.HELD
    if state is State.PENDING and reason == NEVER_REASON:
        return State.CANCELLED  # it would wait forever; report it as the failure it is
    if state is State.PENDING and reason in NEVER_START:
        return State.FAILED
    return state


def _never_start(reason: Optional[str]) -> Optional[str]:
    """The full reason of a job that can never start, or None."""
    why = NEVER_START.get(reason or '')
    return f'{reason}: the job can never start ({why})' if why else None


def parse_squeue(text: str) -> Dict[str, JobInfo]:
    """Parse ``squeue -h -o SQUEUE_FORMAT`` output into JobInfo by job id."""
    jobs: Dict[str, JobInfo] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split('|', 7)
        if len(parts) < 8:
            logger.debug('unparsed squeue line %r', line)
            continue
        job_id, native, reason, user, nodes, start, end, name = parts
        state = map_state(native)
        reason = _slurm_requeue.preempted_reason(native, field(reason))
        state = _job_state(state, reason)
        started = state not in (State.PENDING, State.HELD, State.UNKNOWN)
        jobs[job_id.strip()] = JobInfo(
            id=job_id.strip(), state=state, name=given_name(name), user=field(user),
            node=field(nodes), start=parse_iso(start) if started else None,
            end=parse_iso(end) if state.final else None, reason=reason,
            exitcode=0 if state is State.COMPLETED else None)  # Slurm: exit code 0 only
    return expand_keys(jobs)


def parse_sacct(text: str) -> Dict[str, JobInfo]:
    """Parse ``sacct --parsable2 --noheader -X -o SACCT_FIELDS`` into JobInfo by id."""
    jobs: Dict[str, JobInfo] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split('|')
        if len(parts) < 8:
            logger.debug('unparsed sacct line %r', line)
            continue
        job_id, native, code, reason, user, nodes, start, end = parts[:8]
        if '.' in job_id:
            continue  # a step, not the allocation
        state = map_state(native)
        reason = _slurm_requeue.preempted_reason(native, field(reason))
        if native.startswith('CANCELLED by'):
            reason = reason or native.lower()
        state = _job_state(state, reason)
        jobs[job_id] = JobInfo(
            id=job_id, state=state, exitcode=parse_exitcode(code) if state.final else None,
            user=field(user), node=field(nodes), start=parse_iso(start),
            end=parse_iso(end), reason=reason)
    return expand_keys(jobs)


def _unknown_id(result) -> bool:
    return 'Invalid job id' in result[2]


def _parse_sbatch(out: str) -> str:
    """The job id from ``sbatch --parsable`` output (``id`` or ``id;cluster``)."""
    lines = out.strip().splitlines()
    return lines[-1].split(';', 1)[0].strip() if lines else ''


def sacct_ids(shell: Shell, name: str, timeout: float) -> Optional[List[str]]:
    """Ids slurmdbd recorded for jobs named ``name`` in the last two days; None when
    sacct cannot answer now. Raises :class:`Undecidable` when accounting is off."""
    code, out, err = shell(['sacct', '-X', '-n', '-P', '-o', 'JobID', f'--name={name}',
                             '-S', 'now-2days'], stdin=None, timeout=timeout)
    if code != 0:
        if 'accounting storage is disabled' in (out + err).lower():
            raise Undecidable('slurm accounting is disabled, and squeue does not show it')
        return None
    return [line.strip() for line in out.splitlines() if line.strip()]


class Slurm(BatchSystem):
    """A Slurm cluster; commands go through :attr:`shell` (local or remote)."""

    name = 'slurm'
    submit_command = 'sbatch'
    submission_ext = '.sbatch'
    exec_ext = '.script'
    prefix = '#SBATCH'
    directives = {
        'cores': '--cpus-per-task={}', 'nodes': '--nodes={}', 'mem': '--mem={}',
        'time': '--time={}', 'features': '--constraint={}', 'partition': '--partition={}',
        'account': '--account={}', 'qos': '--qos={}', 'name': '--job-name={}',
        'export': '--export={}', 'begin': '--begin={}', 'outfile': '--output={}',
        'errfile': '--error={}',
    }
    list_separator = '&'
    help_note = 'On slurm, mem is the memory per node.'
    notes = {'requeue': _slurm_requeue.NOTE}
    can_requeue = can_requeue_arrays = True
    array_variable, array_limit = 'SLURM_ARRAY_TASK_ID', slurm_array_limit
    slots = slurm_slots  # CPUs of the default partition: what chunksize=None counts with

    def __init__(self, shell: Shell = local_shell, user: Optional[str] = None,
                 endpoint: Any = None) -> None:
        super().__init__(shell, user, endpoint)
        self._accounting: Optional[bool] = None
        #: jobs not submitted because a dependency failed (see _dependencies.py)
        self._gate = DependencyGate()
        #: ids cancelled because they can never start -> reason (they end FAILED)
        self._unrunnable: Dict[str, str] = {}
        #: ids of the jobs this instance submitted
        self._submitted: Set[str] = set()

    def requeue_header(self, requeue: bool, grace: Optional[int] = None,
                       limit: Optional[str] = None) -> List[str]:
        return _slurm_requeue.header(requeue, grace)

    def attempt_lines(self) -> List[str]:
        return list(_slurm_requeue.ATTEMPT_LINES)

    # scripts ------------------------------------------------------------------------------
    def render_header(self, options: Mapping, files: JobFiles) -> List[str]:
        """``#SBATCH`` lines; output paths a header cannot hold go on sbatch's command line."""
        warn_rounded_time(options.get('time'), files.name)
        return super().render_header(header_options(options), files)

    def render_scripts(self, files: JobFiles, header: Sequence[str], body: str) -> Dict[str, str]:
        """The ``.sbatch`` (header + ``bash <exec script>``) and the ``.script`` (body)."""
        exec_script = files.exec_script
        if exec_script is None:
            return super().render_scripts(files, header, body)
        marker = [] if body.startswith(MARKER) else [MARKER]
        submission = ['#!/bin/bash', MARKER, *header, f'exec bash {shlex.quote(exec_script)}']
        return {files.submission: '\n'.join(submission) + '\n',
                exec_script: '\n'.join(['#!/bin/bash', *marker, body]) + '\n'}

    # submission ---------------------------------------------------------------------------
    def submit(self, files: JobFiles, dependencies: Sequence[str] = (),
               options: Optional[Mapping] = None) -> str:
        """``sbatch --parsable --job-name=<unique> [--output=o --error=e]
        [--dependency=afterok:a:b] <script>``; returns the job id.

        The job name is the job's name plus a random suffix (:func:`unique_name`): a
        submit whose outcome is unknown (sbatch timed out, slurmctld did not answer, the
        connection was lost) is settled by looking that name up with squeue and sacct
        (:func:`submit_once`), never by running sbatch again blindly. A job refused by
        Slurm raises :class:`SubmissionError` with sbatch's message; the scripts stay.

        A job whose dependency is known to have failed is not submitted at all: it gets
        an id of this instance (``unsubmitted.<name>``) that reports CANCELLED.
        """
        deps = [str(d) for d in dependencies]
        name = unique_name(files.name)
        refused = self._gate.refuse(self, deps, name, files.name)
        if refused:
            return refused
        argv = ['sbatch', '--parsable', f'--job-name={name}']
        outfile, errfile = output_paths(options)
        argv += [f'--output={outfile}'] if outfile else []
        argv += ([f'--error={errfile}'] if errfile else []) + array_arguments(options, deps)
        argv.append(files.submission)
        job_id = submit_once(self.shell, argv, name, _parse_sbatch, self._find,
                             timeout=self.status_timeout, deadline=self.lookup_deadline,
                             backoff=self.backoff,
                             hint=f'squeue --name={name}; sacct -X --name={name} -S now-2days')
        self._submitted.add(job_id)
        logger.debug('sbatch %s -> %s', files.submission, job_id)
        return job_id

    def _find(self, name: str) -> Optional[List[str]]:
        """Ids of the jobs named ``name`` (squeue, then sacct); None: no answer now."""
        code, out, _ = self.shell(['squeue', '-h', '-t', 'all', f'--name={name}', '-o', '%i'],
                                   stdin=None, timeout=self.status_timeout)
        if code != 0:
            return None
        ids = out.split()
        return ids if ids else sacct_ids(self.shell, name, self.status_timeout)

    # status --------------------------------------------------------------------------------
    def statuses(self, job_ids: Optional[Sequence[str]] = None,
                 user: Optional[str] = None) -> Dict[str, JobInfo]:
        """One ``squeue -h -t all`` call for the ids (or for ``user``'s jobs)."""
        argv = ['squeue', '-h', '-t', 'all', '-o', SQUEUE_FORMAT]
        unsubmitted: Dict[str, JobInfo] = {}
        if job_ids is not None:
            ids, unsubmitted = self._gate.split([str(i) for i in job_ids])
            if not ids:
                return unsubmitted
            argv += ['-j', ','.join(ids)]
        elif user:
            argv += ['-u', user]
        code, out, _ = run_retried(self.shell, argv, tries=self.status_tries,
                                   timeout=self.status_timeout, backoff=self.backoff,
                                   accept=lambda r: job_ids is not None and _unknown_id(r))
        jobs = parse_squeue(out if code == 0 else '')
        if job_ids is not None:
            wanted = set(str(i) for i in job_ids)
            jobs = {k: v for k, v in jobs.items() if k in wanted}
        self._cancel_unrunnable(jobs)
        jobs.update(unsubmitted)
        return jobs

    def _cancel_unrunnable(self, jobs: Dict[str, JobInfo]) -> None:
        """Cancel (once) the listed jobs submitted here that can never start; they stay
        FAILED. Other jobs that can never start are shown FAILED, and left alone."""
        doomed = [i for i, info in jobs.items() if i in self._submitted
                  and i not in self._unrunnable and _never_start(info.reason)]
        for job_id in doomed:
            self._unrunnable[job_id] = f'{_never_start(jobs[job_id].reason)}; cancelled'
            logger.warning('slurm job %s: %s', job_id, self._unrunnable[job_id])
        if doomed:
            try:
                self.cancel(doomed)
            except CommandError as exc:
                logger.warning('could not cancel jobs %s that can never start: %s',
                               ', '.join(doomed), exc)
        self._mark_unrunnable(jobs)

    def final_info(self, job_ids: Sequence[str]) -> Dict[str, JobInfo]:
        """One ``sacct`` call; empty when accounting is off or unreachable. Ids that are
        not Slurm job ids are left out of the answer (no batch system knows them)."""
        ids, unsubmitted = self._gate.split([str(i) for i in job_ids])
        ids = [i for i in ids if _JOB_ID.match(i)]
        if not ids or self._accounting is False:
            return unsubmitted
        argv = ['sacct', '-j', ','.join(ids), '--parsable2', '--noheader', '-X',
                '-o', SACCT_FIELDS]
        try:
            _, out, _ = run_retried(self.shell, argv, tries=2, timeout=self.status_timeout,
                                    backoff=self.backoff)
        except CommandError as exc:
            text = (exc.stderr + exc.stdout).lower()
            if 'accounting storage is disabled' in text or exc.code == 127:
                logger.info('slurm accounting is off or absent; exit codes come from files')
                self._accounting = False
            else:
                logger.warning('sacct failed; exit codes come from files: %s', exc)
            return unsubmitted
        self._accounting = True
        jobs = _slurm_requeue.follow({k: v for k, v in parse_sacct(out).items() if k in set(ids)},
                               self.statuses)
        self._mark_unrunnable(jobs)
        jobs.update(unsubmitted)
        return jobs

    def listing_details(self, job_ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
        """One ``squeue -O JobID,exit_code,STDOUT`` call: exit codes and output paths."""
        ids = [str(i) for i in job_ids]
        if not ids:
            return {}
        argv = ['squeue', '-h', '-t', 'all', '-j', ','.join(ids), '-O',
                'JobID:|,exit_code:|,STDOUT:|']
        code, out, _ = self.shell(argv)
        details: Dict[str, Dict[str, Any]] = {}
        for line in out.splitlines() if code == 0 else []:
            job_id, status, output = (line.split('|') + ['', ''])[:3]
            details[job_id.strip()] = {'exitcode': wait_status(status),
                                       'output': field(output.strip())}
        return details

    def _mark_unrunnable(self, jobs: Dict[str, JobInfo]) -> None:
        for job_id, info in jobs.items():
            if job_id in self._unrunnable:
                info.state, info.reason, info.exitcode = (State.FAILED,
                                                          self._unrunnable[job_id], None)

    def cancel(self, job_ids: Sequence[str]) -> None:
        """``scancel`` the jobs; ids already gone are not an error."""
        ids = [str(i) for i in job_ids if str(i) not in self._gate.refused]
        if ids:
            run_retried(self.shell, ['scancel', *ids], tries=self.status_tries,
                        timeout=self.status_timeout, backoff=self.backoff,
                        accept=_unknown_id, retry=connection_problem)


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

Arrays (an Executor's tasks): ``qsub -t 1-N [-tc T]``, tasks numbered from 1 and known
here as ``<job>_<n-1>``; parsing and accounting: :mod:`cluster.batch._sge_parse`.
"""
from __future__ import annotations

import dataclasses
import getpass
import logging
import re
import time
import xml.etree.ElementTree as ElementTree
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

from .. import config_file
from . import SETTINGS
from ..run.errors import CommandError
from ..script.files import MARKER, JobFiles
from .base import BatchSystem, JobInfo, Shell, State, local_shell
from ._commands import (connection_problem, header_options, last_line, output_paths,
                        parse_iso, run_retried)
from ._qsub import QsubArguments
from ._arrays import AFTER_ANY_OPTION, ARRAY_OPTION, cached_limit
from ._dependencies import DependencyGate
from . import _sge_requeue
from ._submit import given_name, submit_once, unique_name
from ._sge_parse import (accounting_info, is_grid_engine, listed_keys,  # noqa: F401
                         map_state, max_array_tasks, parse_qacct, parse_qstat_xml, split_key)

logger = logging.getLogger(__name__)

#: exit status of a job script that did not run because a dependency failed
DEPENDENCY_EXIT = 86
#: seconds the script waits for a dependency's exit-code file to appear (shared file systems)
CODE_FILE_WAIT = 10
_QACCT_NOT_FOUND = re.compile(r'job (id|name) .* not found')


def _setting(key: str) -> str:
    """The ``[sge]`` setting ``key`` of ~/.cluster (``pe``, ``memory``), or its default
    (:data:`cluster.batch.SETTINGS`); read each time a header is written."""
    return config_file.get('sge', key) or SETTINGS['sge'][key]


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


def _array_arguments(options: Optional[Mapping[str, Any]]) -> List[str]:
    """``-t 1-N`` (and ``-tc T``) for submit options that ask for an array of N tasks:
    task ``i`` of ``cluster``'s array is Grid Engine's task ``i + 1``."""
    wanted = (options or {}).get(ARRAY_OPTION)
    if not wanted:
        return []
    last, throttle = wanted
    return ['-t', f'1-{int(last) + 1}'] + (['-tc', str(int(throttle))] if throttle else [])


class GridEngine(QsubArguments, BatchSystem):
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
    notes = {'requeue': _sge_requeue.NOTE}
    can_requeue = True
    #: an Executor's tasks run as one array: ``$SGE_TASK_ID`` counts from 1
    array_variable, array_first = 'SGE_TASK_ID', 1

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
        #: ids submitted with -hold_jid: their hold (hqw) is a wait, not a user hold
        self._holding: Set[str] = set()

    def array_limit(self) -> int:
        """``max_aj_tasks`` of ``qconf -sconf``, read once per system instance."""
        return cached_limit(self, max_array_tasks)

    @classmethod
    def found(cls, shell: Shell = local_shell) -> bool:
        """``qsub`` is on the PATH behind ``shell`` and it is Grid Engine's."""
        return super().found(shell) and is_grid_engine(shell, shell is local_shell)

    def requeue_header(self, requeue: bool, grace: Optional[int] = None,
                       limit: Optional[str] = None) -> List[str]:
        return _sge_requeue.header(requeue, grace, limit)

    def attempt_lines(self) -> List[str]:
        return list(_sge_requeue.ATTEMPT_LINES)

    # header --------------------------------------------------------------------------------
    @classmethod
    def arguments(cls, name: str, value: Any) -> List[str]:
        """Cores as slots of the configured parallel environment; ``begin`` and
        ``export`` as for every qsub (:class:`QsubArguments`)."""
        if name == 'cores':
            return [f'-pe {_setting("pe")} {int(value)}']
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
        """One script: the marker, the ``#$`` lines, the dependency check, how the script
        ends (exit 99 only to requeue itself: :mod:`cluster.batch._sge_requeue`), the body."""
        body = body[len(MARKER) + 1:] if body.startswith(MARKER + '\n') else body
        lines = ['#!/bin/bash', MARKER, *header, *_dependency_check(),
                 *_sge_requeue.END_LINES, body]
        return {files.submission: '\n'.join(lines) + '\n'}

    # submission ----------------------------------------------------------------------------
    def submit(self, files: JobFiles, dependencies: Sequence[str] = (),
               options: Optional[Mapping] = None) -> str:
        """``qsub -terse -N <unique> [-t 1-N [-tc T]] [-hold_jid a,b] -o <out> -e <err>
        <script> [id path]...``.

        A job whose dependency already failed is not submitted (the gate's id comes back);
        the ``id path`` pairs name the exit-code files the script checks (see above). A
        dependency on an array task (``7_0``) holds for the whole array (``-hold_jid 7``):
        the task's result file tells the dependent call whether its input failed."""
        deps = [str(d) for d in dependencies]
        name = unique_name(files.name)
        refused = self._gate.refuse(self, deps, name, files.name)
        if refused:
            return refused
        outfile, errfile = output_paths(options)
        argv = ['qsub', '-terse', '-N', name, *_array_arguments(options)]
        holds = [split_key(d)[0] for d in deps + [str(i) for i in
                                                   (options or {}).get(AFTER_ANY_OPTION) or ()]]
        argv += ['-hold_jid', ','.join(dict.fromkeys(holds))] if holds else []
        argv += ['-o', outfile or files.outfile, '-e', errfile or files.errfile, files.submission]
        single = files.script is None and not (options or {}).get(ARRAY_OPTION)
        if files.script is None:
            argv += [part for dep in deps if dep in self._codes
                     for part in (dep, self._codes[dep])]
        job_id = submit_once(self.shell, argv, name, _job_id, self._find,
                             timeout=self.status_timeout, deadline=self.lookup_deadline,
                             backoff=self.backoff, hint=f'qstat -xml; qacct -j {name}')
        if single:
            self._codes[job_id] = files.exitcode
        self._deps[job_id] = deps
        if holds:
            self._holding.add(job_id)
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
            for key in listed_keys(job):   # an array entry: one info per task
                if ids is None or key in ids:
                    jobs[key] = dataclasses.replace(info, id=key, state=self._task_state(
                        key, info.state))
        self._cancel_errors(jobs)
        jobs.update(refused)
        return jobs

    def _listed_info(self, job: Mapping[str, str]) -> JobInfo:
        job_id = job.get('JB_job_number', '')
        state = map_state(job.get('state', ''), held_is_pending=job_id in self._holding)
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

    def _task_state(self, key: str, state: State) -> State:
        """A task this instance deleted is CANCELLED even when its array lists it as
        running on ('d' shows for the task being deleted only)."""
        if state is State.RUNNING and key in self._cancelled and split_key(key)[1]:
            return State.CANCELLED
        return state

    def _cancel_errors(self, jobs: Dict[str, JobInfo]) -> None:
        """Delete (once) the jobs submitted here that sit in an error state (Eqw): they
        never run unless an administrator clears them, and they stay FAILED."""
        stuck = list(dict.fromkeys(
            split_key(i)[0] for i, info in jobs.items() if info.state is State.FAILED
            and split_key(i)[0] in self._submitted_at and split_key(i)[0] not in self._errored))
        if stuck:
            logger.warning('grid engine jobs %s are in an error state; deleting them',
                           ', '.join(stuck))
            self._errored.update(stuck)
            self._delete(stuck)

    def final_info(self, job_ids: Sequence[str]) -> Dict[str, JobInfo]:
        """Accounting of the jobs that left the queue: one ``qacct`` call (``-j ID`` for
        one job, every record of the user that ended since the oldest of them otherwise)."""
        ids, found = self._gate.split([str(i) for i in job_ids])
        ids = [i for i in ids if split_key(i)[0].isdigit()]
        jobs = list(dict.fromkeys(split_key(i)[0] for i in ids))
        if not ids:
            return found
        if len(jobs) == 1:
            argv = ['qacct', '-j', jobs[0]]
        else:
            # a day before the oldest submit: the cluster's clock may be in another zone
            since = min(self._submitted_at.get(i, time.time() - 86400) for i in jobs)
            argv = ['qacct', '-o', self.user or getpass.getuser(), '-E', '-b',
                    time.strftime('%Y%m%d%H%M.%S', time.localtime(since - 86400)), '-j']
        code, out, err = self.shell(argv, stdin=None, timeout=self.status_timeout)
        if code != 0 and not _QACCT_NOT_FOUND.search(out + err):
            logger.warning('qacct failed (exit %s): %s', code, (err or out).strip()[:300])
            return found
        for record in parse_qacct(out):   # the last record of a job (task) is its latest run
            info = self._judged(accounting_info(record))
            if info.id in ids:
                found[info.id] = info
        return found

    def _judged(self, info: JobInfo) -> JobInfo:
        """Apply what only this instance knows: its cancellations and dependency checks."""
        job_id = split_key(info.id)[0]
        if job_id in self._errored:
            info.state = State.FAILED
        elif ({info.id, job_id} & self._cancelled) and info.state is not State.COMPLETED:
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
        """``qdel 7 8.3``: jobs, and array tasks by Grid Engine's number."""
        self._cancelled.update(i for i in ids if i not in self._errored)
        argv = ['qdel', *(f'{job}.{task}' if task else job
                          for job, task in map(split_key, ids))]
        code, out, err = run_retried(self.shell, argv, tries=self.status_tries,
                                     timeout=self.status_timeout, backoff=self.backoff,
                                     retry=connection_problem,
                                     accept=lambda result: not connection_problem(result))
        if code != 0:
            alive = [i for i, info in self.statuses(ids).items() if not info.state.final]
            if alive:
                raise CommandError(argv, code, out, err,
                                   message=f'jobs {", ".join(alive)} still queued or running')

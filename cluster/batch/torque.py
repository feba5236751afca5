"""Torque / PBS: ``qsub`` submits, one ``qstat`` call tracks every job, ``qdel`` cancels.

``qstat`` differs by flavour, found once from ``qstat --version``: ``torque`` (Adaptive
Computing) prints XML with ``-x``, and keeps a finished job in state C with its
``exit_status`` for ``keep_completed`` seconds; ``pbspro`` (PBS Professional, OpenPBS)
shows history with ``-f -x`` (state F, ``Exit_status``); ``wrapper`` (Slurm's
``slurm-wlm-torque`` scripts, or anything else) prints plain ``qstat -f`` text with states
Q/R/C and no exit status, and exits 153 for an unknown id. The wrappers' ``qsub`` ignores
``#PBS -o/-e/-r``: output paths and ``-r n`` go on the command line (nothing is rerun unasked).

Header: nodes, cores and features form one ``-l nodes=N:ppn=C[:features]`` line; ``qos``
is ``-l qos=NAME`` (Moab); ``begin`` is ``-a`` (``[[CC]YY]MMDDhhmm.SS``, a relative
``now+N`` made absolute); ``export='ALL'`` is ``-V``. The final states C and F say nothing
about success: without an exit status (the wrappers) a job is UNKNOWN until
:func:`cluster.queue.outcome` decides from its exit-code file and Slurm's accounting.

Job arrays (``qsub -t``) on the wrappers only, followed task by task as
:mod:`._torque_arrays` describes; Torque and PBS Pro get one job per task.
"""
from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ElementTree
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set

from ..run.errors import CommandError, SubmissionError
from ..script.files import JobFiles
from .base import BatchSystem, JobInfo, Shell, State, local_shell
from ._arrays import AFTER_ANY_OPTION, ARRAY_OPTION, array_spec
from ._slurm_arrays import slurm_array_limit
from ._commands import connection_problem, header_options, last_line, output_paths, run_retried
from ._qsub import QsubArguments
from ._submit import submit_once, unique_name
from ._torque_arrays import WrapperArrays, array_of
from ._torque_parse import (  # noqa: F401 (the tables and parsers are this module's API too)
    PBSPRO_EXEC_CODES, STATES, TORQUE_EXEC_CODES, UNKNOWN_JOB_EXIT, job_info, map_state,
    parse_qstat_f, parse_qstat_xml)
from .slurm import Slurm, sacct_ids

logger = logging.getLogger(__name__)

#: what the Slurm wrappers' qsub can pass through its unquoted shell command line
_WRAPPER_SAFE = re.compile(r'^[A-Za-z0-9_./+,:@%=-]+$')


def _short(job_id: str) -> str:  # '123.head.domain' -> '123'
    return job_id.split('.', 1)[0]


def _unknown_id(result) -> bool:
    code, out, err = result
    return code == UNKNOWN_JOB_EXIT or 'unknown job id' in (out + err).lower()


class Torque(QsubArguments, BatchSystem):
    """Torque, PBS Pro, or Slurm's Torque wrappers; commands go through :attr:`shell`."""

    name = 'torque'
    submit_command = 'qsub'
    submission_ext = '.qsub'
    prefix = '#PBS'
    directives = {
        'cores': '-l nodes=1:ppn={}', 'nodes': '-l nodes={}', 'mem': '-l mem={}MB',
        'time': '-l walltime={}', 'features': '-l nodes=1:{}', 'partition': '-q {}',
        'account': '-A {}', 'qos': '-l qos={}', 'name': '-N {}', 'export': '-v {}',
        'begin': '-a {}', 'outfile': '-o {}', 'errfile': '-e {}',
    }
    list_separator = ':'
    help_note = ('On torque, nodes, cores and features form one line: #PBS -l nodes=N:ppn=C:F1:F2; '
                 'mem is the memory of the whole job; qos is a Moab extension.')
    #: the keywords of the one ``-l nodes=`` line
    node_keys = ('nodes', 'cores', 'features')

    def __init__(self, shell: Shell = local_shell, user: Optional[str] = None,
                 endpoint: Any = None) -> None:
        super().__init__(shell, user, endpoint)
        self._flavour: Optional[str] = None
        #: ids this instance cancelled: their C/F state means cancelled
        self._cancelled: Set[str] = set()
        #: Slurm under the wrappers, for its accounting (see :meth:`final_info`)
        self._slurm: Optional[BatchSystem] = None
        #: the arrays submitted here on the wrappers, and their tasks' states
        self._arrays = WrapperArrays(lambda ids: self._under().final_info(ids))

    # flavour -------------------------------------------------------------------------------
    @property
    def flavour(self) -> str:
        """'torque', 'pbspro' or 'wrapper', from ``qstat --version`` (asked once)."""
        if self._flavour is None:
            code, out, err = self.shell(['qstat', '--version'], stdin=None, timeout=30)
            text = (out + err).lower()
            if code == 0 and 'pbs_version' in text:
                self._flavour = 'pbspro'
            elif code == 0 and 'version:' in text:
                self._flavour = 'torque'
            else:
                self._flavour = 'wrapper'
            logger.debug('qstat flavour: %s', self._flavour)
        return self._flavour

    def _under(self) -> BatchSystem:
        """The Slurm under the wrappers (its accounting, and cancelling array tasks)."""
        if self._slurm is None:
            self._slurm = Slurm(self.shell, self.user, self.endpoint)
        return self._slurm

    # arrays --------------------------------------------------------------------------------
    @property  # type: ignore[override]
    def array_variable(self) -> Optional[str]:
        """Slurm's index variable on the wrappers (``qsub -t`` is ``sbatch --array``, see
        :mod:`._torque_arrays`); None on Torque and PBS Pro (one job per task)."""
        return 'SLURM_ARRAY_TASK_ID' if self.flavour == 'wrapper' else None

    def follow(self, job_id: str) -> None:
        """An array task followed here but not submitted here (``cluster wait 123_4``);
        no command runs (only the wrappers' listing uses it)."""
        if array_of(job_id):
            self._arrays.expect(job_id)

    def array_limit(self) -> int:
        """Slurm's MaxArraySize on the wrappers (read once), else 1."""
        return slurm_array_limit(self) if self.flavour == 'wrapper' else 1

    # header --------------------------------------------------------------------------------
    @classmethod
    def directive_lines(cls, options: Mapping[str, Any]) -> List[str]:
        """Nodes, cores and features as one ``#PBS -l nodes=N:ppn=C:F1:F2`` line, first."""
        nodes, cores, features = (options.get(key) for key in cls.node_keys)
        spec = f'nodes={nodes or 1}' + (f':ppn={cores}' if cores else '')
        spec += ''.join(f':{feature}' for feature in features or [])
        first = [f'{cls.prefix} -l {spec}'] if nodes or cores or features else []
        rest = {k: v for k, v in options.items() if k not in cls.node_keys}
        return first + super().directive_lines(rest)

    # submission ----------------------------------------------------------------------------
    def render_header(self, options: Mapping, files: JobFiles) -> List[str]:
        """``#PBS`` lines; output paths a header cannot hold go on qsub's command line."""
        return super().render_header(header_options(options), files)

    def submit(self, files: JobFiles, dependencies: Sequence[str] = (),
               options: Optional[Mapping] = None) -> str:
        """``qsub -N <unique> [-W depend=afterok:a:b] -o <out> -e <err> <script>``: the id.

        A qsub of unknown outcome is settled by looking the unique name up
        (:func:`submit_once`). Slurm's wrapper hands these arguments to a shell unquoted:
        there, a path with spaces, quotes or ``$()`` is refused before anything runs."""
        outfile, errfile = output_paths(options)
        name = unique_name(files.name)
        argv = ['qsub', '-N', name, '-r', 'n']  # not rerunnable: Torque jobs cannot requeue
        after_any = [str(i) for i in (options or {}).get(AFTER_ANY_OPTION) or ()]
        kinds = ([f'afterok:{":".join(str(d) for d in dependencies)}'] if dependencies else []) \
            + ([f'afterany:{":".join(after_any)}'] if after_any else [])
        argv += ['-W', 'depend=' + ','.join(kinds)] if kinds else []
        spec = array_spec(options)
        argv += ['-t', spec] if spec else []
        argv += ['-o', outfile or files.outfile, '-e', errfile or files.errfile, files.submission]
        if self.flavour == 'wrapper':
            unsafe = [a for a in argv[1:] if not _WRAPPER_SAFE.match(a)]
            if unsafe:
                raise SubmissionError(argv, None, message=(
                    f'refused: Slurm\'s qsub wrapper runs sbatch through a shell without quoting, '
                    f'so {unsafe[0]!r} would be split or executed; use paths of letters, digits '
                    f'and _ . / + , : @ % = - only'))
        job_id = submit_once(self.shell, argv, name, last_line, self._find,
                             timeout=self.status_timeout, deadline=self.lookup_deadline,
                             backoff=self.backoff, hint=f'qstat -f (Job_Name = {name})')
        logger.debug('qsub %s -> %s', files.submission, job_id)
        if spec:
            self._arrays.add(job_id, name, (options or {})[ARRAY_OPTION][0] + 1)
        return job_id

    def _find(self, name: str) -> Optional[List[str]]:
        """Ids of the jobs named ``name`` in qstat's listing (then in sacct, under Slurm's
        wrappers, for jobs Slurm already forgot); None when qstat cannot answer now."""
        argv = self._qstat()
        code, out, err = self.shell(argv, stdin=None, timeout=self.status_timeout)
        if code != 0 and not _unknown_id((code, out, err)):
            return None
        try:
            records = self._records(argv, code, out, err)
        except CommandError:
            return None
        ids = [r['Job Id'] for r in records if r.get('Job_Name') == name]
        if ids or self.flavour != 'wrapper':
            return ids
        return sacct_ids(self.shell, name, self.status_timeout)

    # status --------------------------------------------------------------------------------
    def statuses(self, job_ids: Optional[Sequence[str]] = None,
                 user: Optional[str] = None) -> Dict[str, JobInfo]:
        """One ``qstat`` call (:meth:`_qstat`) for the ids, or for every job of ``user``."""
        ids = None if job_ids is None else [str(i) for i in job_ids]
        if ids is not None and not ids:
            return {}
        tasks = [i for i in ids or () if array_of(i)] if self.flavour == 'wrapper' else []
        argv = self._qstat([] if tasks else ids or [])  # qstat cannot name a task: list all
        code, out, err = run_retried(self.shell, argv, tries=self.status_tries,
                                     timeout=self.status_timeout, backoff=self.backoff,
                                     accept=_unknown_id)
        records = self._records(argv, code, out, err)
        found: Dict[str, JobInfo] = {}
        if self.flavour == 'wrapper' and (ids is None or tasks):  # a full listing
            for task_id in tasks:
                self._arrays.expect(task_id)
            records, found = self._arrays.follow(records)
        infos = [job_info(attrs, self.flavour) for attrs in records]
        if ids is None:
            infos = [i for i in infos if not user or i.user == user]
            return self._marked({**{info.id: info for info in infos}, **found})
        found = {i: found[i] for i in tasks if i in found}
        return self._marked({**self._match([i for i in ids if i not in tasks], infos), **found})

    def _qstat(self, ids: Sequence[str] = ()) -> List[str]:
        """The full-status listing: ``qstat -x`` (XML) on Torque, ``-f -x`` (history
        included) on PBS Pro, ``-f`` on the wrappers."""
        return ['qstat', *{'torque': ['-x'], 'pbspro': ['-f', '-x']}.get(self.flavour, ['-f']),
                *ids]

    def _records(self, argv: List[str], code: int, out: str, err: str) -> List[Dict[str, str]]:
        try:
            return parse_qstat_xml(out) if self.flavour == 'torque' else parse_qstat_f(out)
        except ElementTree.ParseError as exc:
            raise CommandError(argv, code, out, err, message=f'unreadable qstat XML: {exc}')

    @staticmethod
    def _match(ids: Iterable[str], infos: Iterable[JobInfo]) -> Dict[str, JobInfo]:
        """Key the answer by the ids as asked ('123.head' may come back '123.head.domain')."""
        by_short = {_short(info.id): info for info in infos}
        found = {}
        for job_id in ids:
            info = by_short.get(_short(job_id))
            if info is not None:
                info.id = job_id
                found[job_id] = info
        return found

    def _marked(self, jobs: Dict[str, JobInfo]) -> Dict[str, JobInfo]:
        """Apply this instance's cancellations; a finished job without an exit status
        (the wrappers) is UNKNOWN, for :func:`cluster.queue.outcome` to decide."""
        for job_id, info in jobs.items():
            over = info.state.final or info.state is State.UNKNOWN
            if _short(job_id) in self._cancelled and over and info.state is not State.TIMEOUT:
                how = 'cancelled with ' + ('scancel' if array_of(job_id) else 'qdel')
                info.state, info.reason = State.CANCELLED, (
                    info.reason if info.state.final and info.reason else how)
            elif info.state is State.COMPLETED and info.exitcode is None:
                info.state = State.UNKNOWN
                info.reason = 'finished; qstat shows no exit status'
        return jobs

    def final_info(self, job_ids: Sequence[str]) -> Dict[str, JobInfo]:
        """On Slurm's Torque wrappers, Slurm's accounting (``sacct``) for the jobs: it
        knows the exit code and the state (cancelled, timeout...) that the wrappers'
        qstat hides. Empty elsewhere, or where there is no ``sacct``."""
        if self.flavour != 'wrapper' or not job_ids:
            return {}
        by_short = {_short(str(i)): str(i) for i in job_ids}
        found = self._under().final_info(list(by_short))
        for short, info in found.items():
            info.id = by_short[short]
        return self._marked({info.id: info for info in found.values()})

    def cancel(self, job_ids: Sequence[str]) -> None:
        """``qdel`` the jobs; an id that is already finished or gone is not an error. An
        array task on the wrappers is cancelled with ``scancel`` (their qdel would cancel
        its whole array)."""
        ids = [str(i) for i in job_ids]
        self._cancelled.update(_short(i) for i in ids)
        tasks = [i for i in ids if array_of(i)] if self.flavour == 'wrapper' else []
        if tasks:
            self._under().cancel(tasks)
        ids = [i for i in ids if i not in tasks]
        if not ids:
            return
        code, out, err = run_retried(self.shell, ['qdel', *ids], tries=self.status_tries,
                                     timeout=self.status_timeout, backoff=self.backoff,
                                     retry=connection_problem,
                                     accept=lambda result: not connection_problem(result))
        if code != 0:
            alive = [i for i, info in self.statuses(ids).items() if not info.state.final]
            if alive:
                raise CommandError(['qdel', *ids], code, out, err,
                                   message=f'jobs {", ".join(alive)} still queued or running')


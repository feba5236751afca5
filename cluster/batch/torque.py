"""Torque / PBS: ``qsub`` submits, one ``qstat`` call tracks every job, ``qdel`` cancels.

``qstat`` differs by flavour, found once from ``qstat --version``: ``torque`` (Adaptive
Computing) prints XML with ``-x``, and keeps a finished job in state C with its
``exit_status`` for ``keep_completed`` seconds; ``pbspro`` (PBS Professional, OpenPBS)
shows history with ``-f -x`` (state F, ``Exit_status``); ``wrapper`` (Slurm's
``slurm-wlm-torque`` scripts, or anything else) prints plain ``qstat -f`` text with states
Q/R/C and no exit status, and exits 153 for an unknown id. The wrappers' ``qsub`` ignores
``#PBS -o/-e``, so output paths go on the command line.

Header: nodes, cores and features form one ``-l nodes=N:ppn=C[:features]`` line; ``qos``
is ``-l qos=NAME`` (Moab); ``begin`` is ``-a`` (``[[CC]YY]MMDDhhmm.SS``, a relative
``now+N`` made absolute); ``export='ALL'`` is ``-V``. The final states C and F say nothing
about success: without an exit status (the wrappers) a job is UNKNOWN until
:func:`cluster.queue.outcome` decides from its exit-code file and Slurm's accounting.
"""
from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ElementTree
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set

from ..run.errors import CommandError, SubmissionError
from ..script.files import JobFiles
from .base import BatchSystem, JobInfo, Shell, State, local_shell
from ._commands import (begin_stamp, connection_problem, header_options, is_grid_engine, last_line,
                        output_paths, parse_ctime, parse_duration, run_retried)
from ._submit import given_name, submit_once, unique_name
from .slurm import Slurm, sacct_ids

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
#: what the Slurm wrappers' qsub can pass through its unquoted shell command line
_WRAPPER_SAFE = re.compile(r'^[A-Za-z0-9_./+,:@%=-]+$')


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
                   name=given_name(attrs.get('Job_Name')), user=user, node=_nodes(attrs.get('exec_host')),
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


def _short(job_id: str) -> str:  # '123.head.domain' -> '123'
    return job_id.split('.', 1)[0]


def _unknown_id(result) -> bool:
    code, out, err = result
    return code == UNKNOWN_JOB_EXIT or 'unknown job id' in (out + err).lower()


class Torque(BatchSystem):
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

    @classmethod
    def found(cls, shell: Shell = local_shell) -> bool:  # a Grid Engine qsub is not Torque's
        return super().found(shell) and not is_grid_engine(shell, shell is local_shell)

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

    # header --------------------------------------------------------------------------------
    @classmethod
    def arguments(cls, name: str, value: Any) -> List[str]:
        """``begin`` in qsub's ``-a`` form; ``export`` ALL as ``-V``, NONE as nothing."""
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
        argv = ['qsub', '-N', name]
        if dependencies:
            argv += ['-W', 'depend=afterok:' + ':'.join(str(d) for d in dependencies)]
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
        argv = self._qstat(ids or [])
        code, out, err = run_retried(self.shell, argv, tries=self.status_tries,
                                     timeout=self.status_timeout, backoff=self.backoff,
                                     accept=_unknown_id)
        infos = [job_info(attrs, self.flavour) for attrs in self._records(argv, code, out, err)]
        if ids is None:
            infos = [i for i in infos if not user or i.user == user]
            return self._marked({info.id: info for info in infos})
        return self._marked(self._match(ids, infos))

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
            if _short(job_id) in self._cancelled and info.state.final \
                    and info.state is not State.TIMEOUT:
                info.state = State.CANCELLED
                info.reason = info.reason or 'cancelled with qdel'
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
        if self._slurm is None:
            self._slurm = Slurm(self.shell, self.user, self.endpoint)
        by_short = {_short(str(i)): str(i) for i in job_ids}
        found = self._slurm.final_info(list(by_short))
        for short, info in found.items():
            info.id = by_short[short]
        return self._marked({info.id: info for info in found.values()})

    def cancel(self, job_ids: Sequence[str]) -> None:
        """``qdel`` the jobs; an id that is already finished or gone is not an error."""
        ids = [str(i) for i in job_ids]
        if not ids:
            return
        self._cancelled.update(_short(i) for i in ids)
        code, out, err = run_retried(self.shell, ['qdel', *ids], tries=self.status_tries,
                                     timeout=self.status_timeout, backoff=self.backoff,
                                     retry=connection_problem,
                                     accept=lambda result: not connection_problem(result))
        if code != 0:
            alive = [i for i, info in self.statuses(ids).items() if not info.state.final]
            if alive:
                raise CommandError(['qdel', *ids], code, out, err,
                                   message=f'jobs {", ".join(alive)} still queued or running')


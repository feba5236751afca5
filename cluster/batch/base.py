"""The batch-system interface: :class:`BatchSystem`, the shared :class:`State` and
:class:`JobInfo`, and the generic header renderer every system builds on.

A system declares what differs as class attributes (directive prefix, one directive
format per keyword, list separator, file extensions) and overrides a method only for a
quirk of its header (Torque's one ``-l nodes=`` line). The renderer takes options already
normalised by :func:`cluster.options.check_arguments`; it imports nothing from
:mod:`cluster.options`, which builds on this package.
"""
from __future__ import annotations

import abc
import enum
import logging
import time
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Callable, ClassVar, Dict, List, Mapping, Optional,
                    Sequence, Tuple)

from .. import run
from ..run.errors import OptionError
from ._commands import HEADER_UNSAFE

if TYPE_CHECKING:
    from ..script.files import JobFiles

logger = logging.getLogger(__name__)

#: runs ``argv`` (optionally feeding ``stdin``) and returns (exit_code, stdout, stderr)
Shell = Callable[..., Tuple[int, str, str]]


def local_shell(argv: Sequence[str], stdin: Optional[str] = None,
                 timeout: Optional[float] = 60) -> Tuple[int, str, str]:
    """Run a command on this machine (the default :data:`Shell`)."""
    return run.cmd(list(argv), stdin=stdin, timeout=timeout)


class State(enum.Enum):
    """The states every batch system's native codes are mapped onto."""

    PENDING = 'pending'
    RUNNING = 'running'
    COMPLETED = 'completed'
    FAILED = 'failed'
    CANCELLED = 'cancelled'
    TIMEOUT = 'timeout'
    HELD = 'held'
    UNKNOWN = 'unknown'

    @property
    def final(self) -> bool:
        """True when the job will not change state any more."""
        return self in _FINAL

    def __str__(self) -> str:
        return self.value


#: the keywords that only a system that can requeue (:attr:`BatchSystem.can_requeue`) takes
REQUEUE_KEYWORDS = ('requeue', 'grace', 'max_requeues')

_FINAL = frozenset({State.COMPLETED, State.FAILED, State.CANCELLED, State.TIMEOUT})


@dataclass
class JobInfo:
    """What a status query knows about one job; unknown fields stay None."""

    id: str
    state: State
    exitcode: Optional[int] = None
    name: Optional[str] = None
    user: Optional[str] = None
    node: Optional[str] = None
    start: Optional[float] = None  # epoch seconds
    end: Optional[float] = None
    reason: Optional[str] = None


class BatchSystem(abc.ABC):
    """What a batch system must provide; generic logic lives in ``job.py``/``queue.py``."""

    #: 'slurm', 'torque', 'local', ...
    name: ClassVar[str]
    #: the program whose presence on PATH means this system is available
    submit_command: ClassVar[str] = ''
    #: extension of the submission script ('' for none), and of a separate exec script
    submission_ext: ClassVar[str] = ''
    exec_ext: ClassVar[Optional[str]] = None
    #: whether a profile may name this system for a remote cluster (``qtype``)
    remote: ClassVar[bool] = True
    #: the directive prefix of header lines (``#SBATCH``); '' means no script header
    prefix: ClassVar[str] = ''
    #: keyword -> directive format (``'cores': '--cpus-per-task={}'``), in header order;
    #: a keyword that is missing has no directive on this system
    directives: ClassVar[Mapping[str, str]] = {}
    #: how a list value (``features``) is joined in a directive
    list_separator: ClassVar[str] = ','
    #: keyword -> what it does here, for help texts, where that is not a directive
    notes: ClassVar[Mapping[str, str]] = {}
    #: a line the help text adds about this system's header
    help_note: ClassVar[str] = ''
    #: whether a job may ask for ``requeue=True``: put back in the queue after a
    #: preemption or node failure, and able to requeue itself after a checkpoint
    can_requeue: ClassVar[bool] = False
    #: whether an Executor's array tasks may ask for requeue too (each task requeued by
    #: itself, under its own id, its calls run again from the start; shown live on Slurm)
    can_requeue_arrays: ClassVar[bool] = False
    #: the environment variable that holds an array task's index (None where the system
    #: has no job arrays, and an Executor submits one job per task)
    array_variable: ClassVar[Optional[str]] = None
    #: the value :attr:`array_variable` has in an array's first task (its index is 0)
    array_first: ClassVar[int] = 0
    #: tries of a failing status command before it is an error, their timeout, and the
    #: first pause between them (doubling)
    status_tries: ClassVar[int] = 4
    status_timeout: ClassVar[float] = 60.0
    backoff: ClassVar[float] = 0.5
    #: seconds a submit of unknown outcome is looked up while the scheduler does not answer
    lookup_deadline: ClassVar[float] = 300.0

    def __init__(self, shell: Shell = local_shell, user: Optional[str] = None,
                 endpoint: Any = None) -> None:
        """``shell`` runs this system's commands; ``user`` is whose jobs it shows (None: the
        current user); ``endpoint`` is the remote cluster it runs on (None: this machine)."""
        self.shell = shell
        self.user = user
        self.endpoint = endpoint

    @classmethod
    def found(cls, shell: Shell = local_shell) -> bool:
        """True when this system runs behind ``shell``: by default, its submit command is
        on the PATH (a system without one, local mode, is always there). A system that
        shares its submit command with one listed after it checks that it is its own;
        :func:`cluster.batch.found` asks the registry."""
        if not cls.submit_command:
            return True
        if shell is local_shell:
            return run.which(cls.submit_command) is not None
        code, _, _ = shell(['which', cls.submit_command], timeout=30)
        return code == 0

    # header --------------------------------------------------------------------------------
    @classmethod
    def arguments(cls, name: str, value: Any) -> List[str]:
        """The directive arguments (no prefix) for one normalised value; [] writes nothing.

        A value that a header line cannot hold (whitespace, quotes, backslashes) is an
        :class:`~cluster.run.errors.OptionError` naming the keyword."""
        if isinstance(value, (list, tuple)):
            if not value:
                return []
            value = cls.list_separator.join(str(item) for item in value)
        if HEADER_UNSAFE.search(str(value)):
            raise OptionError(f'value of keyword {name!r} cannot go into a {cls.name} header '
                              f'line: {value!r} contains whitespace, a quote or a backslash')
        return [cls.directives[name].format(value)]

    @classmethod
    def directive(cls, name: str, value: Any) -> Optional[List[str]]:
        """The header lines for one keyword's normalised value; None when this system has
        no directive for it (or no header at all)."""
        if not cls.prefix or name not in cls.directives:
            return None
        return [f'{cls.prefix} {argument}' for argument in cls.arguments(name, value)]

    @classmethod
    def directive_lines(cls, options: Mapping[str, Any]) -> List[str]:
        """Header lines for normalised options (canonical names), in :attr:`directives`
        order; None values and keywords without a directive are skipped."""
        lines: List[str] = []
        for name in cls.directives:
            if options.get(name) is not None:
                lines += cls.directive(name, options[name]) or []
        return lines

    @classmethod
    def keyword_help(cls, name: str, metavar: str, directive: bool = True) -> str:
        """How keyword ``name`` appears on this system, for help texts: its directive with
        ``metavar`` for the value, else a note (``directive`` False: a job-code option)."""
        if name in REQUEUE_KEYWORDS and not cls.can_requeue:
            return '(not available)'
        if name in cls.notes or not cls.prefix:
            return cls.notes.get(name, '')
        if not directive:
            return '(used by the job code; not a header line)'
        if name not in cls.directives:
            return '(not available)'
        if ',' in metavar:
            metavar = cls.list_separator.join(metavar.split(','))
        return f'{cls.prefix} {cls.directives[name].format(metavar)}'

    def render_header(self, options: Mapping, files: JobFiles) -> List[str]:
        """Directive lines (``#SBATCH ...``) from options normalised by
        :func:`cluster.options.check_arguments`; may be empty."""
        return self.directive_lines(options)

    def render_scripts(self, files: JobFiles, header: Sequence[str], body: str) -> Dict[str, str]:
        """Map each path to write onto its text; by default one submission script."""
        return {files.submission: '\n'.join(['#!/bin/bash', *header, body]) + '\n'}

    def requeue_header(self, requeue: bool, grace: Optional[int] = None,
                       limit: Optional[str] = None) -> List[str]:
        """Header lines for a job's ``requeue`` keyword; ``grace`` (seconds) for a function
        job that checkpoints: it gets the checkpoint signal (SIGUSR2, in the job's shell) that
        long before its time limit ``limit`` (``HH:MM:SS``, None: none), and when it is
        preempted. None by default."""
        return []

    def attempt_lines(self) -> List[str]:
        """Job-body lines of a requeueable job that export ``CLUSTER_ATTEMPT`` (0 on the
        first run, 1 after the first requeue...) and ``CLUSTER_REQUEUE`` (the command line
        that puts the running job back in the queue). They may read
        ``$_cluster_attempts``, the file that holds how many attempts started before this
        one. None by default."""
        return []

    @abc.abstractmethod
    def submit(self, files: JobFiles, dependencies: Sequence[str] = (),
               options: Optional[Mapping] = None) -> str:
        """Submit the written job and return its id."""

    @abc.abstractmethod
    def statuses(self, job_ids: Optional[Sequence[str]] = None,
                 user: Optional[str] = None) -> Dict[str, JobInfo]:
        """One query for many jobs: the listed ids, or all jobs of ``user`` when ids is None.

        Ids the system no longer knows are left out of the answer.
        """

    @abc.abstractmethod
    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel the listed jobs."""

    def block(self, job_ids: Sequence[str], timeout: float) -> bool:
        """Wait up to ``timeout`` s for news of the listed jobs; True if some may have ended.

        Real batch systems can only be polled, so the default just sleeps; the local
        queue overrides this to wake the moment a job finishes.
        """
        time.sleep(max(0.0, timeout))
        return False

    def array_limit(self) -> int:
        """The most tasks one array may have (indices ``0..limit-1``)."""
        return 1

    def slots(self) -> Optional[int]:
        """The jobs that can run here at once, where the system knows (None)."""
        return None

    def submit_call(self, function: Callable, args: Sequence, dependencies: Sequence[str],
                    options: Mapping, name: str) -> Optional[str]:
        """Run ``function(*args)`` as a job without a script where the system can (local
        mode's JobQueue), after the listed jobs; its id, or None when it cannot."""
        return None

    def follow(self, job_id: str) -> None:
        """``job_id`` is being followed (:meth:`cluster.queue.Watcher.track`): a system
        whose full listing cannot name some ids (tasks of arrays it did not submit) learns
        them here, without running a command (the caller holds a lock). Nothing by default."""

    def final_info(self, job_ids: Sequence[str]) -> Dict[str, JobInfo]:
        """Accounting for jobs that left the queue (e.g. ``sacct``); empty if not known."""
        return {}

    def listing_details(self, job_ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
        """For ``cluster queue``: ``{id: {'exitcode': int, 'output': path}}`` of the jobs
        the system can tell about (one command); empty when it cannot."""
        return {}

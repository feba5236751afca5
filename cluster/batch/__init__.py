"""The batch-system seam: one small interface, one module per system, and detection.

Every module here (``slurm``, ``torque``, ``local``; later ``xenon``) subclasses
:class:`BatchSystem` and implements only what differs between systems. Commands go
through the system's :attr:`BatchSystem.runner`, so one implementation serves a local
login node and (through a remote runner) a cluster reached over SSH.
"""
from __future__ import annotations

import abc
import enum
import importlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import run
from ..script import JobFiles

logger = logging.getLogger(__name__)

#: runs ``argv`` (optionally feeding ``stdin``) and returns (exit_code, stdout, stderr)
Runner = Callable[..., Tuple[int, str, str]]


def local_runner(argv: Sequence[str], stdin: Optional[str] = None,
                 timeout: Optional[float] = 60) -> Tuple[int, str, str]:
    """Run a command on this machine (the default :data:`Runner`)."""
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

    def __init__(self, runner: Runner = local_runner) -> None:
        self.runner = runner

    def available(self) -> bool:
        """True when this system can be used (its submit command is found)."""
        code, _, _ = self.runner(['which', self.submit_command])
        return code == 0

    def render_header(self, options: Mapping, files: JobFiles) -> List[str]:
        """Directive lines (``#SBATCH ...``) from normalised options; may be empty.

        The formats live in the option table (``cluster/options.py``); a system
        overrides this only for what the table cannot say.
        """
        from ..options import options_to_string
        return [line for line in options_to_string(options, self.name).splitlines() if line]

    def render_scripts(self, files: JobFiles, header: Sequence[str], body: str) -> Dict[str, str]:
        """Map each path to write onto its text; by default one submission script."""
        return {files.submission: '\n'.join(['#!/bin/bash', *header, body]) + '\n'}

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

    def final_info(self, job_ids: Sequence[str]) -> Dict[str, JobInfo]:
        """Accounting for jobs that left the queue (e.g. ``sacct``); empty if not known."""
        return {}

    def listing_details(self, job_ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
        """For ``cluster queue``: ``{id: {'exitcode': int, 'output': path}}`` of the jobs
        the system can tell about (one command); empty when it cannot."""
        return {}


_MODULES = {'slurm': 'slurm', 'torque': 'torque', 'local': 'local'}
_INSTANCES: Dict[str, BatchSystem] = {}
_LOCK = threading.Lock()
_DETECTED: Optional[str] = None


def names() -> List[str]:
    """The batch systems this package knows."""
    return list(_MODULES)


def system_class(qtype: str) -> type:
    """The :class:`BatchSystem` subclass for ``qtype``."""
    if qtype not in _MODULES:
        from ..errors import OptionError
        raise OptionError(f'unknown qtype {qtype!r}; known: {", ".join(_MODULES)}')
    module = importlib.import_module(f'{__name__}.{_MODULES[qtype]}')
    return module.SYSTEM


def get(qtype: Optional[str] = None) -> BatchSystem:
    """The shared instance of the batch system ``qtype`` (detected when None)."""
    qtype = qtype or detect()
    with _LOCK:
        if qtype not in _INSTANCES:
            _INSTANCES[qtype] = system_class(qtype)()
        return _INSTANCES[qtype]


def detect(refresh: bool = False) -> str:
    """'slurm' when sbatch is on PATH, else 'torque' when qsub is, else 'local'. Cached."""
    global _DETECTED
    if _DETECTED is None or refresh:
        if run.which('sbatch'):
            _DETECTED = 'slurm'
        elif run.which('qsub'):
            _DETECTED = 'torque'
        else:
            _DETECTED = 'local'
        logger.debug('detected batch system %s', _DETECTED)
    return _DETECTED

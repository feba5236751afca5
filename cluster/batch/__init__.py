"""The batch-system seam: one small interface, one module per system, and the registry.

Every module here (``slurm``, ``torque``, ``local``) subclasses :class:`BatchSystem`
(:mod:`cluster.batch.base`) and holds everything that differs between systems: header
directives and quirks, file extensions, states, submit, status and cancel. Commands go
through the system's :attr:`BatchSystem.runner`, so one implementation serves a local
login node and (through a remote runner) a cluster reached over SSH.

:data:`SYSTEMS` is the registry: generic code (the CLI's ``--qtype`` choices, config
validation, the keyword help, detection) reads the systems from it and never names one.
Adding a system is one module and one line here.
"""
from __future__ import annotations

import logging
import threading
from typing import Dict, Optional, Type

from .. import run
from ..errors import OptionError
from .base import BatchSystem, JobInfo, Runner, State, local_runner
from .local import Local
from .slurm import Slurm
from .torque import Torque

logger = logging.getLogger(__name__)

__all__ = ['BatchSystem', 'JobInfo', 'Runner', 'State', 'local_runner', 'SYSTEMS',
           'system_class', 'get', 'detect']

#: name -> class of every batch system, in the order :func:`detect` tries them; the
#: last (local mode) needs no program and is always there
SYSTEMS: Dict[str, Type[BatchSystem]] = {cls.name: cls for cls in (Slurm, Torque, Local)}

_INSTANCES: Dict[str, BatchSystem] = {}
_LOCK = threading.Lock()
_DETECTED: Optional[str] = None


def system_class(qtype: str) -> Type[BatchSystem]:
    """The :class:`BatchSystem` subclass for ``qtype``; OptionError names the known ones."""
    if qtype not in SYSTEMS:
        raise OptionError(f'unknown qtype {qtype!r}; known: {", ".join(SYSTEMS)}')
    return SYSTEMS[qtype]


def get(qtype: Optional[str] = None) -> BatchSystem:
    """The shared instance of the batch system ``qtype`` (detected when None)."""
    qtype = qtype or detect()
    with _LOCK:
        if qtype not in _INSTANCES:
            _INSTANCES[qtype] = system_class(qtype)()
        return _INSTANCES[qtype]


def detect(refresh: bool = False) -> str:
    """The first system of :data:`SYSTEMS` whose submit command is on PATH (``sbatch``,
    then ``qsub``), else local mode. Cached."""
    global _DETECTED
    if _DETECTED is None or refresh:
        _DETECTED = next(name for name, cls in SYSTEMS.items()
                         if not cls.submit_command or run.which(cls.submit_command))
        logger.debug('detected batch system %s', _DETECTED)
    return _DETECTED

"""The batch-system seam: one small interface, one module per system, and the registry.

Every system module here (``slurm``, ``sge``, ``torque``, ``local``) holds one subclass of
:class:`BatchSystem` (:mod:`cluster.batch.base`) with everything that differs between
systems: header directives and quirks, file extensions, states, detection, submit, status
and cancel. Commands go through the system's :attr:`BatchSystem.shell`, so one
implementation serves a local login node and (through the remote shell) a cluster
reached over SSH.

:data:`SYSTEMS` is the registry: generic code (the CLI's ``--qtype`` choices, config
validation, the keyword help, detection, file names) reads the systems from it and never
names one (:data:`SETTINGS` declares the ``~/.cluster`` sections of systems that have
settings). A system's module is imported when the system is first asked for, so nothing
here loads a system (or local mode's job queue) that is not used. Adding a system is one
module and one line here.
"""
from __future__ import annotations

import importlib
import logging
import threading
from typing import Dict, List, Optional, Tuple, Type

from ..run.errors import OptionError
from .base import BatchSystem, JobInfo, Shell, State, local_shell

logger = logging.getLogger(__name__)

__all__ = ['BatchSystem', 'JobInfo', 'Shell', 'State', 'local_shell', 'SYSTEMS', 'SETTINGS',
           'system_class', 'systems', 'remote_qtypes', 'get', 'detect', 'found']

#: name -> ``module:Class`` of every batch system, in the order :func:`detect` tries them;
#: the last (local mode) needs no program and is always there
SYSTEMS: Dict[str, str] = {
    'slurm': 'slurm:Slurm',
    'sge': 'sge:GridEngine',
    'torque': 'torque:Torque',
    'local': 'local:Local',
}

#: section -> ``{key -> default}`` of the ``~/.cluster`` settings of batch systems, each
#: a name (letters, digits, ``_ . -``) that :mod:`cluster.config_file` checks
SETTINGS: Dict[str, Dict[str, str]] = {
    'sge': {'pe': 'smp', 'memory': 'mem_free'},
}

_INSTANCES: Dict[str, BatchSystem] = {}
_LOCK = threading.Lock()
_DETECTED: Optional[str] = None


def system_class(qtype: str) -> Type[BatchSystem]:
    """The :class:`BatchSystem` subclass for ``qtype``; OptionError names the known ones."""
    if qtype not in SYSTEMS:
        raise OptionError(f'unknown qtype {qtype!r}; known: {", ".join(SYSTEMS)}')
    module, _, name = SYSTEMS[qtype].partition(':')
    return getattr(importlib.import_module(f'{__name__}.{module}'), name)


def systems() -> List[Type[BatchSystem]]:
    """Every registered system class, in registry order."""
    return [system_class(name) for name in SYSTEMS]


def remote_qtypes() -> Tuple[str, ...]:
    """The systems a remote profile may name as ``qtype`` (all but local mode)."""
    return tuple(cls.name for cls in systems() if cls.remote)


def get(qtype: Optional[str] = None) -> BatchSystem:
    """The shared instance of the batch system ``qtype`` on this machine (detected when None)."""
    qtype = qtype or detect()
    with _LOCK:
        if qtype not in _INSTANCES:
            _INSTANCES[qtype] = system_class(qtype)()
        return _INSTANCES[qtype]


def detect(refresh: bool = False) -> str:
    """The first system of :data:`SYSTEMS` found on this machine, else local mode. Cached."""
    global _DETECTED
    if _DETECTED is None or refresh:
        _DETECTED = detect_with(local_shell, remote=False)
        logger.debug('detected batch system %s', _DETECTED)
    return _DETECTED


def found(qtype: str, shell: Shell = local_shell) -> bool:
    """True when ``qtype`` runs behind ``shell``: its :meth:`BatchSystem.found` says so, and
    no system before it in :data:`SYSTEMS` with the same submit command is found there (two
    systems may share a ``qsub``; the one listed first that knows its own wins)."""
    wanted = system_class(qtype)
    for cls in systems():
        if cls is wanted:
            return cls.found(shell)
        if cls.submit_command == wanted.submit_command and cls.found(shell):
            return False
    return False


def detect_with(shell: Shell, remote: bool) -> Optional[str]:
    """The first system whose :meth:`BatchSystem.found` says it runs behind ``shell``;
    with ``remote``, only systems that can run remotely are tried (None when none is)."""
    for cls in systems():
        if remote and not cls.remote:
            continue
        if cls.found(shell):
            return cls.name
    return None

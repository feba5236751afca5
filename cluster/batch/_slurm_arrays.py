"""Slurm's arrays: sbatch's ``--array`` and ``--dependency`` arguments, MaxArraySize
(``scontrol show config``: the most tasks one array may have) and the CPUs its default
partition can give at once (``sinfo``), each read once per system instance. Torque's
wrapper flavour, which runs on Slurm, asks the same limit.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Mapping, Optional

from .base import Shell
from ._arrays import AFTER_ANY_OPTION, array_spec, cached_limit

logger = logging.getLogger(__name__)


def array_arguments(options: Optional[Mapping[str, Any]],
                    deps: List[str] = ()) -> List[str]:
    """sbatch's ``--array=0-K%T`` for submit options that ask for an array, and its
    ``--dependency=afterok:a:b,afterany:c`` for ``deps`` and the options' ``after_any``."""
    spec = array_spec(options)
    argv = [f'--array={spec}'] if spec else []
    after_any = [str(i) for i in (options or {}).get(AFTER_ANY_OPTION) or ()]
    kinds = ([f'afterok:{":".join(deps)}'] if deps else []) + \
        ([f'afterany:{":".join(after_any)}'] if after_any else [])
    return argv + ([f'--dependency={",".join(kinds)}'] if kinds else [])


def parse_config_value(text: str, key: str) -> Optional[int]:
    """The integer of ``Key = value`` in a ``show config`` listing, else None."""
    match = re.search(rf'^\s*{re.escape(key)}\s*=\s*(\d+)', text, re.MULTILINE)
    return int(match.group(1)) if match else None


def slurm_max_array_size(shell: Shell) -> int:
    """The most tasks an array may have (indices 0..MaxArraySize-1), from one
    ``scontrol show config``; Slurm's default 1001 when it does not say."""
    code, out, err = shell(['scontrol', 'show', 'config'], stdin=None, timeout=60)
    value = parse_config_value(out, 'MaxArraySize') if code == 0 else None
    if value is None:
        logger.warning('MaxArraySize not read from scontrol show config (%s); using 1001',
                       err.strip() or f'exit code {code}')
        return 1001
    return value


def parse_sinfo_cpus(text: str) -> Optional[int]:
    """The usable CPUs of the default partition (else the largest) in ``sinfo -h -o
    '%P %C'`` lines (``debug* 2/0/0/2``: allocated/idle/other/total; other is down or
    drained), else None."""
    found: Dict[str, int] = {}
    default = None
    for line in text.splitlines():
        match = re.match(r'^(\S+)\s+(\d+)/(\d+)/(\d+)/(\d+)\s*$', line.strip())
        if not match:
            continue
        name, _, _, other, total = match.groups()
        if name.endswith('*'):
            name = default = name[:-1]
        found[name] = max(found.get(name, 0), int(total) - int(other))
    if not found:
        return None
    return found[default] if default is not None else max(found.values())


def slurm_slots(system: Any) -> Optional[int]:
    """CPUs the default partition can give at once (one ``sinfo``, once per system
    instance); None when sinfo does not say."""
    if not hasattr(system, '_slots'):
        code, out, err = system.shell(['sinfo', '-h', '-o', '%P %C'], stdin=None, timeout=60)
        system._slots = (parse_sinfo_cpus(out) or None) if code == 0 else None
        if system._slots is None:
            logger.warning('slots not read from sinfo (%s)', err.strip() or f'exit code {code}')
    return system._slots


def slurm_array_limit(system: Any) -> int:
    """Slurm's MaxArraySize, read once per system instance (its ``array_limit``)."""
    return cached_limit(system, slurm_max_array_size)

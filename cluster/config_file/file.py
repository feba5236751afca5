"""The config file in use: its path, its cached parse, locked edits, the built-in settings.

The file is ``$CLUSTER_CONFIG`` when that is set (looked up at every call), else
``~/.cluster``; :mod:`cluster.config_file.ini` parses, locks and rewrites it.
"""
from __future__ import annotations

import difflib
import logging
import os
from typing import Any, Callable, Dict, List, Tuple

from ..batch import SETTINGS as SYSTEM_SETTINGS
from . import ini

logger = logging.getLogger(__name__)

ENV_VAR = 'CLUSTER_CONFIG'
DEFAULT_PATH = '~/.cluster'
PROFILE_PREFIX = 'profile.'

#: built-in settings, used when the file lacks them (never written on their own)
DEFAULTS: Dict[str, Dict[str, Any]] = {
    'queue': {'max_queue_len': 1000, 'queue_update': 2},
    'jobqueue': {'cores': None},
    'records': {'retention_days': 30},
    **{section: dict(keys) for section, keys in SYSTEM_SETTINGS.items()},  # a batch system's
    'executor': {'progress': False},
}
#: settings of older versions that nothing reads any more: (section, key) -> why
RETIRED: Dict[Tuple[str, str], str] = {
    ('queue', 'sleep_len'): 'waiting polls the batch system every queue_update seconds',
}
_SECTIONS_TEXT = ', '.join(f'[{section}]' for section in DEFAULTS) + ', [profile.NAME]'


def config_path() -> str:
    """The config file in use: ``$CLUSTER_CONFIG`` if set, else ``~/.cluster``."""
    return os.path.abspath(os.path.expanduser(os.environ.get(ENV_VAR) or DEFAULT_PATH))


_warned: Dict[str, Any] = {}


def _state() -> ini.State:
    """The config file in use, parsed (cached until it changes); warns of stray sections."""
    state = ini.read(os.path.realpath(config_path()))
    if _warned.get(state.path) is not state:
        _warned[state.path] = state
        for section in state.raw:
            if section not in DEFAULTS and not section.startswith(PROFILE_PREFIX):
                logger.warning('%s: section [%s] is not used by cluster (sections: %s); '
                               'a profile is named [%s%s]', state.where(section),
                               section, _SECTIONS_TEXT, PROFILE_PREFIX, section)
        for (section, key), why in RETIRED.items():
            if key in state.raw.get(section, {}):
                logger.warning('%s: %s in [%s] is no longer used (%s); it can go',
                               state.where(section), key, section, why)
    return state


def _modify(plan: Callable[[ini.State], List[ini.Edit]]) -> ini.State:
    """Edit the config file in use under its lock (see :func:`cluster.config_file.ini.modify`)."""
    return ini.modify(os.path.realpath(config_path()), plan)


def _close(word: str, choices: List[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f' (did you mean {" or ".join(map(repr, close))}?)' if close else ''

"""The settings of ``~/.cluster`` (``[queue]``, ``[jobqueue]``) and the functions that read
and write any section: :func:`get`, :func:`set`, :func:`delete`, :func:`check_file`."""
from __future__ import annotations

import configparser
import logging
import os
import re
from typing import Any, Dict, List, Optional

from ..run.errors import ConfigError
from ..options import canonical
from . import ini
from .file import _SECTIONS_TEXT, DEFAULTS, PROFILE_PREFIX, RETIRED, _close, _modify, _state
from .ini import FORBIDDEN_KEYS
from .profiles import (BUILTIN_PROFILES, CONNECTION_KEYS, _profile_from, _profile_names,
                       get_profile, set_profile)
from .values import SETTING_CHECKS, format_value, parse_value

logger = logging.getLogger(__name__)

_KEY_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.+-]*')


def _typed_setting(state: ini.State, section: str, key: str, raw: str) -> Any:
    value = parse_value(raw)
    if value is None:                        # an empty value means "not set"
        return DEFAULTS.get(section, {}).get(key)
    check = SETTING_CHECKS.get((section, key))
    if check:
        try:
            value = check(value)
        except ValueError as problem:
            raise ConfigError(f'{state.where(section, key)}: {problem}') from None
    return value


def _effective(state: ini.State) -> Dict[str, Dict[str, Any]]:
    result: Dict[str, Dict[str, Any]] = {s: dict(v) for s, v in DEFAULTS.items()}
    for name, values in BUILTIN_PROFILES.items():
        result[PROFILE_PREFIX + name] = dict(values)
    for section, keys in state.raw.items():
        if section.startswith(PROFILE_PREFIX):
            result[section] = {}
        target = result.setdefault(section, {})
        for key, raw in keys.items():
            target[key] = _typed_setting(state, section, key, raw)
    return result


def _check_names(section: Any, key: Any = None) -> None:
    """Refuse section and key names that could not be written back safely."""
    if not isinstance(section, str) or not section.strip() or re.search(r'[\[\]\n\r]', section) \
            or section != section.strip():
        raise ConfigError(f'section name {section!r} is not a plain name')
    if key is not None and (not isinstance(key, str) or not _KEY_NAME.fullmatch(key)):
        raise ConfigError(f'key name {key!r} may only hold letters, digits and _ . + -')
    if isinstance(key, str) and key.lower() in FORBIDDEN_KEYS:
        raise ConfigError(f'{key!r} is never stored in the config file; a password comes from '
                          'the environment or a prompt')


# ---------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------

def get(section: Optional[str] = None, key: Optional[str] = None, default: Any = None) -> Any:
    """Read the configuration.

    - ``get()``: every section as ``{section: {key: value}}``, built-in settings and
      profiles included;
    - ``get(section)``: that section's dict (``{}`` for an unknown section);
    - ``get(section, key)``: the typed value (see :func:`parse_value`). When the file lacks
      the key and ``default`` is not None, the default is written to the file and returned
      (the seed's behaviour); else the built-in default (``DEFAULTS``), else None.

    >>> get('queue', 'queue_update')
    2
    """
    state = _state()
    if section is None:
        return _effective(state)
    if key is None:
        return _effective(state).get(section, {})
    key = key.lower()
    profile_name = section[len(PROFILE_PREFIX):] if section.startswith(PROFILE_PREFIX) else None
    if key in state.raw.get(section, {}):
        return _typed_setting(state, section, key, state.raw[section][key])
    if default is not None:
        try:
            set(section, key, default)
        except ini.WriteFailed as error:
            logger.warning('could not store the default of [%s] %s: %s', section, key, error)
        return default
    if profile_name in BUILTIN_PROFILES and section not in state.raw:
        return BUILTIN_PROFILES[profile_name].get(key)
    return DEFAULTS.get(section, {}).get(key)


def set(section: str, key: str, value: Any) -> None:  # noqa: A001 (the seed's name)
    """Store one value. Built-in settings are checked; a key of a ``[profile.NAME]``
    section is checked and normalised as in :func:`set_profile` (``memory = 4GB`` is
    stored as ``mem = 4096``)."""
    _check_names(section, key)
    key = key.lower()
    if section.startswith(PROFILE_PREFIX):
        set_profile(section[len(PROFILE_PREFIX):], {key: value}, update=True)
        return
    if section in DEFAULTS:
        check_setting_name(section, key)
    check = SETTING_CHECKS.get((section, key))
    typed = parse_value(value) if isinstance(value, str) else value
    if check and typed is not None:              # empty (None) means the built-in default
        try:
            check(typed)
        except ValueError as problem:
            raise ConfigError(f'bad value for [{section}] {key}: {problem}') from None
    text = format_value(value)
    _modify(lambda state: [('set', section, key, text)])


def delete(section: str, key: Optional[str] = None) -> bool:
    """Remove a key, or a whole section when ``key`` is None; True if something was removed.

    No value is checked, so a bad key can always be removed."""
    _check_names(section)
    key = key.lower() if isinstance(key, str) else key
    found = []

    def plan(state: ini.State) -> List[ini.Edit]:
        if key is None:
            found.append(section in state.raw)
            return [('drop', section, None, None)]
        found.append(key in state.raw.get(section, {}))
        return [('del', section, key, None)]
    _modify(plan)
    return bool(found and found[0])


def check_setting_name(section: str, key: Optional[str] = None) -> None:
    """Refuse a section or key that ``cluster`` does not use, naming close matches.

    Sections are ``queue``, ``jobqueue`` and ``profile.NAME`` (an existing profile); keys
    are the built-in settings of a section, or a profile's job options and connection keys.
    """
    if section.startswith(PROFILE_PREFIX):
        get_profile(section[len(PROFILE_PREFIX):])      # ProfileError lists the profiles
        if key is not None and key.strip().lower() not in CONNECTION_KEYS:
            canonical(key)                              # OptionError with a suggestion
        return
    if section not in DEFAULTS:
        names = list(DEFAULTS) + [PROFILE_PREFIX + n for n in _profile_names(_state())]
        raise ConfigError(f'unknown section {section!r}; sections: {_SECTIONS_TEXT}'
                          + _close(section, names))
    if key is not None and (section, key.lower()) in RETIRED:
        raise ConfigError(f'{key.lower()} in [{section}] is no longer used '
                          f'({RETIRED[section, key.lower()]})')
    if key is not None and key.lower() not in DEFAULTS[section]:
        keys = list(DEFAULTS[section])
        raise ConfigError(f'unknown key {key!r} in [{section}]; its keys: {", ".join(keys)}'
                          + _close(key.lower(), keys))


def get_config() -> configparser.ConfigParser:
    """A copy of the file as a ``configparser.ConfigParser`` (raw strings, no built-ins).

    Changing it changes nothing on disk: use :func:`set` and :func:`delete`."""
    parser = configparser.ConfigParser(interpolation=None, default_section='')
    parser.read_dict(_state().raw)
    return parser


def check_file(path: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Parse and check a whole config file (default: the one in use): every setting and
    every profile. Returns :func:`get`'s view of it; raises ConfigError naming the line."""
    state = ini.read(os.path.realpath(path)) if path else _state()
    result = _effective(state)
    for name in _profile_names(state):
        _profile_from(state, name)
    return result

"""``~/.cluster``: queue settings and keyword profiles, in one INI file.

The file is ``$CLUSTER_CONFIG`` when that is set (looked up at every call), else
``~/.cluster``. It is read on first use, cached, and read again when it changes on
disk; importing this module reads and writes nothing.

Sections (see ``~cluster.example`` at the top of the repository):

* ``[queue]``: ``max_queue_len`` (1000), ``queue_update`` (2: seconds between status
  polls), ``sleep_len`` (1: seconds between retries);
* ``[jobqueue]``: ``cores`` (empty: every core of the machine);
* ``[profile.NAME]``, one per profile: job options (``cluster.options``) and, for a remote
  cluster, the connection keys ``remote``, ``qtype``, ``key``, ``python`` and
  ``strict_host_key``.

Built-in profiles ``default``, ``small`` and ``large`` apply unless the file defines a
profile of that name, which then wins whole. Other sections are kept and returned as is
(a warning names them: a plain ``[quick]`` is not the profile ``quick``).

Writing takes an exclusive lock on ``<file>.lock``, reads the file again under it, edits
only the lines that change (comments and every other key stay), checks that nothing else
changed, and replaces the file atomically with mode 0600. A file that does not parse is
never written: :class:`~cluster.errors.ConfigError` names the file and the line. One key
per line; comments start with ``#`` or ``;``, on their own lines or after a value (after
whitespace: ``qtype = slurm  # or torque``).

This module holds the settings, the profiles and the public functions; the file itself
is handled by :mod:`cluster._ini`, values and connection keys by
:mod:`cluster.config_values`.
"""
from __future__ import annotations

import configparser
import copy
import difflib
import logging
import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import _ini
# FORBIDDEN_KEYS, REMOTE_QTYPES, Remote, parse_remote, parse_value and format_value are
# part of this module's API; they live where they are used
from ._ini import FORBIDDEN_KEYS  # noqa: F401
from .config_values import (REMOTE_QTYPES, SETTING_CHECKS, Remote,  # noqa: F401
                            check_connection, format_value, parse_remote, parse_value)
from .errors import ConfigError, OptionError, ProfileError

logger = logging.getLogger(__name__)

ENV_VAR = 'CLUSTER_CONFIG'
DEFAULT_PATH = '~/.cluster'
PROFILE_PREFIX = 'profile.'

#: built-in settings, used when the file lacks them (never written on their own)
DEFAULTS: Dict[str, Dict[str, Any]] = {
    'queue': {'max_queue_len': 1000, 'queue_update': 2, 'sleep_len': 1},
    'jobqueue': {'cores': None},
}
#: built-in profiles; a profile of the same name in the file replaces one whole
BUILTIN_PROFILES: Dict[str, Dict[str, Any]] = {
    'default': {'cores': 1, 'nodes': 1, 'mem': 4000, 'time': '02:00:00'},
    'small': {'cores': 1, 'nodes': 1, 'mem': 1000, 'time': '01:00:00'},
    'large': {'cores': 16, 'nodes': 1, 'mem': 32000, 'time': '24:00:00'},
}
#: profile keys that say where and how to connect; they are not job options
CONNECTION_KEYS: Tuple[str, ...] = ('remote', 'qtype', 'key', 'python', 'strict_host_key')
#: defaults of connection keys, applied when a profile has ``remote``
CONNECTION_DEFAULTS: Dict[str, Any] = {'strict_host_key': True}

_SECTIONS_TEXT = '[queue], [jobqueue], [profile.NAME]'
_PROFILE_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.+-]*')
_KEY_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.+-]*')


# ---------------------------------------------------------------------------------------
# profiles
# ---------------------------------------------------------------------------------------

def _check_profile_name(name: Any) -> str:
    if not isinstance(name, str) or not _PROFILE_NAME.fullmatch(name):
        raise ProfileError(f'profile name {name!r} may only hold letters, digits and _ . + - '
                           '(and must not start with . + -)')
    return name


def _split(kwds: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Split profile keywords into (normalised job options, checked connection keys)."""
    from .options import check_arguments
    options: Dict[str, Any] = {}
    connection: Dict[str, Any] = {}
    for key, value in kwds.items():
        lower = key.strip().lower() if isinstance(key, str) else key
        if isinstance(value, str) and not value.strip():
            value = None                     # an empty value in the file means "not set"
        if lower in FORBIDDEN_KEYS:
            raise OptionError(f'{key!r} is never stored in a profile; a password comes from '
                              'the environment or a prompt')
        if lower in CONNECTION_KEYS:
            if value is None:
                continue
            try:
                connection[lower] = check_connection(lower, value)
            except ValueError as problem:
                raise OptionError(f'bad value for profile key {lower!r}: {problem}') from None
        else:
            options[key] = value
    if 'remote' in connection:
        for key, default in CONNECTION_DEFAULTS.items():
            connection.setdefault(key, default)
    args = {k: v for k, v in check_arguments(options).items() if v is not None}
    return args, connection


class Profile:
    """A named set of keyword options, with connection keys for a remote cluster.

    ``args`` holds the job options, normalised by :func:`cluster.options.check_arguments`
    (``{'mem': 4096, ...}``); ``connection`` holds ``remote``, ``qtype``, ``key``,
    ``python`` and ``strict_host_key`` (true by default when ``remote`` is set).

    >>> Profile('big', {'memory': '8GB', 'cpus': 8}).args
    {'mem': 8192, 'cores': 8}

    As in the seed, it reads like a dict of all its keys: ``profile['cores']``,
    ``'mem' in profile``, ``profile.get('qos')``, and ``profile.kwds`` (a copy; change a
    profile with :func:`set_profile`).
    """

    def __init__(self, name: str, kwds: Optional[Mapping[str, Any]] = None,
                 builtin: bool = False) -> None:
        self.name = _check_profile_name(name)
        if isinstance(kwds, Profile):
            kwds = kwds.to_dict()
        self.args, self.connection = _split(dict(kwds or {}))
        self.builtin = builtin

    @property
    def remote(self) -> Optional[Remote]:
        """The parsed ``remote`` address, or None for a local profile."""
        url = self.connection.get('remote')
        return parse_remote(url) if url else None

    def to_dict(self) -> Dict[str, Any]:
        """Job options and connection keys in one dict, as stored in the file."""
        return {**self.args, **self.connection}

    @property
    def kwds(self) -> Dict[str, Any]:
        """The seed's name for :meth:`to_dict`."""
        return self.to_dict()

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def write(self) -> 'Profile':
        """Store this profile in the config file, replacing one of the same name."""
        return set_profile(self.name, self, update=False)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Profile) and other.name == self.name
                and other.args == self.args and other.connection == self.connection)

    def __repr__(self) -> str:
        items = ', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())
        return f'Profile({self.name!r}' + (f', {items})' if items else ')')


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------

def config_path() -> str:
    """The config file in use: ``$CLUSTER_CONFIG`` if set, else ``~/.cluster``."""
    return os.path.abspath(os.path.expanduser(os.environ.get(ENV_VAR) or DEFAULT_PATH))


_warned: Dict[str, Any] = {}


def _state() -> _ini.State:
    """The config file in use, parsed (cached until it changes); warns of stray sections."""
    state = _ini.read(os.path.realpath(config_path()))
    if _warned.get(state.path) is not state:
        _warned[state.path] = state
        for section in state.raw:
            if section not in DEFAULTS and not section.startswith(PROFILE_PREFIX):
                logger.warning('%s: section [%s] is not used by cluster (sections: %s); '
                               'a profile is named [%s%s]', state.where(section),
                               section, _SECTIONS_TEXT, PROFILE_PREFIX, section)
    return state


def _modify(plan: Callable[[_ini.State], List[_ini.Edit]]) -> _ini.State:
    """Edit the config file in use under its lock (see :func:`cluster._ini.modify`)."""
    return _ini.modify(os.path.realpath(config_path()), plan)


def _typed_setting(state: _ini.State, section: str, key: str, raw: str) -> Any:
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


_PROFILE_ERRORS = (OptionError, ConfigError)


def _profile_from(state: _ini.State, name: str) -> Optional[Profile]:
    section = PROFILE_PREFIX + name
    if section in state.raw:
        values = state.raw[section]
        for key, value in values.items():    # one key at a time, to name the bad one
            try:
                _split({key: value})
            except _PROFILE_ERRORS as problem:
                raise ConfigError(f'{state.where(section, key)}: {problem}') from None
        try:
            return Profile(name, values)
        except _PROFILE_ERRORS as problem:
            raise ConfigError(f'{state.where(section)}: {problem}') from None
    if name in BUILTIN_PROFILES:
        return Profile(name, BUILTIN_PROFILES[name], builtin=True)
    return None


def _profile_names(state: _ini.State) -> List[str]:
    names = [s[len(PROFILE_PREFIX):] for s in state.raw if s.startswith(PROFILE_PREFIX)]
    return sorted({*names, *BUILTIN_PROFILES})


def _effective(state: _ini.State) -> Dict[str, Dict[str, Any]]:
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
        except _ini.WriteFailed as error:
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

    def plan(state: _ini.State) -> List[_ini.Edit]:
        if key is None:
            found.append(section in state.raw)
            return [('drop', section, None, None)]
        found.append(key in state.raw.get(section, {}))
        return [('del', section, key, None)]
    _modify(plan)
    return bool(found and found[0])


def _close(word: str, choices: List[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f' (did you mean {" or ".join(map(repr, close))}?)' if close else ''


def check_setting_name(section: str, key: Optional[str] = None) -> None:
    """Refuse a section or key that ``cluster`` does not use, naming close matches.

    Sections are ``queue``, ``jobqueue`` and ``profile.NAME`` (an existing profile); keys
    are the built-in settings of a section, or a profile's job options and connection keys.
    """
    if section.startswith(PROFILE_PREFIX):
        get_profile(section[len(PROFILE_PREFIX):])      # ProfileError lists the profiles
        if key is not None and key.strip().lower() not in CONNECTION_KEYS:
            from .options import canonical
            canonical(key)                              # OptionError with a suggestion
        return
    if section not in DEFAULTS:
        names = list(DEFAULTS) + [PROFILE_PREFIX + n for n in _profile_names(_state())]
        raise ConfigError(f'unknown section {section!r}; sections: {_SECTIONS_TEXT}'
                          + _close(section, names))
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


def get_profile(profile: Optional[str] = None) -> Any:
    """One :class:`Profile` by name, or with None every profile as ``{name: Profile}``.

    A name that is neither in the file nor built in raises ProfileError listing the
    profiles that exist."""
    state = _state()
    if profile is None:
        return {name: _profile_from(state, name) for name in _profile_names(state)}
    if isinstance(profile, Profile):
        return copy.deepcopy(profile)
    found = _profile_from(state, profile) if isinstance(profile, str) else None
    if found is None:
        names = _profile_names(state)
        stray = (f'; the file has a section [{profile}]: name it [{PROFILE_PREFIX}{profile}]'
                 if profile in state.raw else '')
        raise ProfileError(f'no profile {profile!r} in {state.path} or built in; profiles: '
                           + ', '.join(names) + _close(str(profile), names) + stray)
    return found


def set_profile(name: str, args: Any, update: bool = True) -> Profile:
    """Store a profile (a dict of keywords, or a :class:`Profile`) and return it as stored.

    With ``update`` (the default) the keywords are merged into the existing profile (from
    the file, else the built-in one) and a value of None removes a key; without it the
    profile is replaced whole. Keywords are checked and normalised first."""
    _check_profile_name(name)
    given = args.to_dict() if isinstance(args, Profile) else dict(args or {})
    removed = {_canonical(k) for k, v in given.items() if v is None}
    given = Profile(name, {k: v for k, v in given.items() if v is not None}).to_dict()
    result: List[Profile] = []

    def plan(state: _ini.State) -> List[_ini.Edit]:
        section = PROFILE_PREFIX + name
        base = _profile_from(state, name) if update else None
        merged = {**(base.to_dict() if base else {}), **given}
        for key in removed:
            merged.pop(key, None)
        profile = Profile(name, merged)
        result.append(profile)
        stored = {k: format_value(v) for k, v in profile.to_dict().items()}
        asked = {_canonical(k) for k in given} | removed
        written = state.raw.get(section, {}) if update else {}
        for key in written:                  # keep the user's other values as written
            if _canonical(key) not in asked and _canonical(key) in stored:
                stored.pop(_canonical(key))
                stored[key] = written[key]
        edits: List[_ini.Edit] = [('del', section, k, None)
                                  for k in state.raw.get(section, {}) if k not in stored]
        edits += [('set', section, k, v) for k, v in stored.items()
                  if state.raw.get(section, {}).get(k) != v]
        return [('section', section, None, None)] + edits
    _modify(plan)
    return result[0]


def _canonical(key: str) -> str:
    from .options import canonical
    lower = str(key).strip().lower()
    if lower in CONNECTION_KEYS:
        return lower
    try:
        return canonical(lower)
    except OptionError:
        return lower


def delete_profile(name: str) -> None:
    """Remove a profile from the file. A built-in one then applies again; one that is
    not in the file raises ProfileError."""
    state = _state()
    if PROFILE_PREFIX + name not in state.raw:
        in_file = [n for n in _profile_names(state) if PROFILE_PREFIX + n in state.raw]
        raise ProfileError(f'no profile {name!r} in {state.path}; profiles in the file: '
                           + (', '.join(in_file) or 'none')
                           + ('' if name not in BUILTIN_PROFILES
                              else f' ({name!r} is built in and cannot be deleted)'))
    delete(PROFILE_PREFIX + name)


def check_file(path: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Parse and check a whole config file (default: the one in use): every setting and
    every profile. Returns :func:`get`'s view of it; raises ConfigError naming the line."""
    state = _ini.read(os.path.realpath(path)) if path else _state()
    result = _effective(state)
    for name in _profile_names(state):
        _profile_from(state, name)
    return result

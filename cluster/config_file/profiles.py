"""Keyword profiles: :class:`Profile`, the built-in ones, and reading, storing and deleting
them in the config file (``[profile.NAME]`` sections)."""
from __future__ import annotations

import copy
import logging
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..run.errors import ConfigError, OptionError, ProfileError
from ..options import canonical, check_arguments
from . import ini
from .file import PROFILE_PREFIX, _close, _modify, _state
from .ini import FORBIDDEN_KEYS
from .values import Remote, check_connection, format_value, parse_remote

logger = logging.getLogger(__name__)

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

_PROFILE_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.+-]*')


def _check_profile_name(name: Any) -> str:
    if not isinstance(name, str) or not _PROFILE_NAME.fullmatch(name):
        raise ProfileError(f'profile name {name!r} may only hold letters, digits and _ . + - '
                           '(and must not start with . + -)')
    return name


def _split(kwds: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Split profile keywords into (normalised job options, checked connection keys)."""
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


_PROFILE_ERRORS = (OptionError, ConfigError)


def _profile_from(state: ini.State, name: str) -> Optional[Profile]:
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


def _profile_names(state: ini.State) -> List[str]:
    names = [s[len(PROFILE_PREFIX):] for s in state.raw if s.startswith(PROFILE_PREFIX)]
    return sorted({*names, *BUILTIN_PROFILES})


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

    def plan(state: ini.State) -> List[ini.Edit]:
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
        edits: List[ini.Edit] = [('del', section, k, None)
                                  for k in state.raw.get(section, {}) if k not in stored]
        edits += [('set', section, k, v) for k, v in stored.items()
                  if state.raw.get(section, {}).get(k) != v]
        return [('section', section, None, None)] + edits
    _modify(plan)
    return result[0]


def _canonical(key: str) -> str:
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
    _modify(lambda state: [('drop', PROFILE_PREFIX + name, None, None)])

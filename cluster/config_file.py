"""``~/.cluster``: queue settings and keyword profiles, in one INI file.

The file is ``$CLUSTER_CONFIG`` when that is set (looked up at every call), else
``~/.cluster``. It is read on first use, cached, and read again when it changes on
disk; importing this module reads and writes nothing.

Sections (see ``~cluster.example`` at the top of the repository):

``[queue]``          ``max_queue_len`` (1000), ``queue_update`` (2: seconds between
                     status polls), ``sleep_len`` (1: seconds between retries)
``[jobqueue]``       ``cores`` (empty: every core of the machine)
``[profile.NAME]``   one per profile: job options (``cluster.options``) and, for a
                     remote cluster, the connection keys ``remote``, ``qtype``, ``key``,
                     ``python`` and ``strict_host_key``

Built-in profiles ``default``, ``small`` and ``large`` apply unless the file defines a
profile of that name, which then wins whole. Other sections are kept and returned as is.

Writing takes an exclusive lock on ``<file>.lock``, reads the file again under it, edits
only the lines that change (comments and every other key stay), checks that nothing else
changed, and replaces the file atomically with mode 0600. A file that does not parse is
never written: :class:`~cluster.errors.ConfigError` names the file and the line. One key
per line, comments on their own lines (``#`` or ``;``).
"""
from __future__ import annotations

import configparser
import contextlib
import copy
import difflib
import fcntl
import logging
import os
import re
import tempfile
import threading
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

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
REMOTE_QTYPES: Tuple[str, ...] = ('slurm', 'torque')
#: keys refused anywhere in the file: secrets come from the environment or a prompt
FORBIDDEN_KEYS: Tuple[str, ...] = ('password', 'passphrase')

_PROFILE_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.+-]*')
_KEY_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.+-]*')
_INT = re.compile(r'[+-]?\d+')
_FLOAT = re.compile(r'[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?')
_BOOLS = {'true': True, 'yes': True, 'on': True, 'false': False, 'no': False, 'off': False}


# ---------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------

def parse_value(text: str) -> Any:
    """Type a value from the file: '' and 'none' -> None, true/false/yes/no/on/off -> bool,
    then int, float, else the string (a comma list stays a string)."""
    value = text.strip()
    lower = value.lower()
    if lower in ('', 'none'):
        return None
    if lower in _BOOLS:
        return _BOOLS[lower]
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    return value


def format_value(value: Any) -> str:
    """The file form of a value: None -> '', bools true/false, lists comma-joined."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise OptionError(f'list item {item!r} cannot be stored in a config file')
            if ',' in str(item):
                raise OptionError(f'list item {item!r} holds a comma; items are stored '
                                  'comma-separated, so give it as separate items')
            items.append(str(item).strip())
        return ','.join(items)
    text = str(value).strip()
    if '\n' in text or '\r' in text:
        raise OptionError(f'value {value!r} spans several lines; one line per key')
    return text


def _number(minimum: float, integer: bool, accepts: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        ok_type = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_type) or value < minimum:
            raise ValueError(f'{value!r} is not {accepts}')
        return value
    return check


def _cores(value: Any) -> Any:
    return None if value is None else _number(1, True, 'a whole number >= 1')(value)


#: checks of the built-in settings: (check, accepted forms)
_SETTING_CHECKS: Dict[Tuple[str, str], Callable[[Any], Any]] = {
    ('queue', 'max_queue_len'): _number(1, True, 'a whole number >= 1'),
    ('queue', 'queue_update'): _number(0.001, False, 'a number of seconds > 0'),
    ('queue', 'sleep_len'): _number(0, False, 'a number of seconds >= 0'),
    ('jobqueue', 'cores'): _cores,
}


class Remote(NamedTuple):
    """The parts of ``remote = ssh://user@host[:port][/workdir]``."""

    user: Optional[str]
    host: str
    port: Optional[int]
    workdir: Optional[str]


def parse_remote(url: str) -> Remote:
    """Split an ``ssh://user@host[:port][/workdir]`` address; ValueError says what is wrong.

    >>> parse_remote('ssh://ann@hpc.example.org:2222/scratch/ann')
    Remote(user='ann', host='hpc.example.org', port=2222, workdir='/scratch/ann')
    """
    accepted = 'accepted: ssh://user@host[:port][/workdir]'
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f'{url!r} is not an address; {accepted}')
    parts = urlsplit(url.strip())
    if parts.scheme != 'ssh':
        raise ValueError(f'{url!r} does not start with ssh://; {accepted}')
    if parts.password is not None:
        raise ValueError('the address holds a password; passwords are never stored, they '
                         'come from the environment or a prompt')
    if not parts.hostname:
        raise ValueError(f'{url!r} names no host; {accepted}')
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f'{url!r} has a bad port; {accepted}') from None
    if parts.query or parts.fragment or (parts.username is not None and not parts.username):
        raise ValueError(f'{url!r} is not of the form {accepted[10:]}')
    return Remote(parts.username, parts.hostname, port, parts.path or None)


def _check_connection(key: str, value: Any) -> Any:
    """Check one connection key; ValueError says what is accepted."""
    if key == 'remote':
        parse_remote(value)
        return value.strip()
    if key == 'qtype':
        if not isinstance(value, str) or value.strip().lower() not in REMOTE_QTYPES:
            raise ValueError(f'{value!r} is not one of {", ".join(REMOTE_QTYPES)}')
        return value.strip().lower()
    if key == 'strict_host_key':
        typed = parse_value(value) if isinstance(value, str) else value
        if not isinstance(typed, bool):
            raise ValueError(f'{value!r} is not true or false')
        return typed
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'{value!r} is not a non-empty string')
    return value.strip()


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
                connection[lower] = _check_connection(lower, value)
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


class _Layout(NamedTuple):
    """Where each section and key sits: [first line, line after the last) (0-based)."""

    sections: Dict[str, Tuple[int, int]]
    keys: Dict[Tuple[str, str], Tuple[int, int]]


_SECTION_LINE = re.compile(r'\[(?P<name>.+)\]')          # as configparser, on the stripped line
_KEY_LINE = re.compile(r'(?P<key>.*?)\s*[=:]\s*(?P<value>.*)$')


def _layout(lines: List[str]) -> _Layout:
    """Locate sections and keys with configparser's rules (checked against it by _parse)."""
    sections: Dict[str, Tuple[int, int]] = {}
    keys: Dict[Tuple[str, str], Tuple[int, int]] = {}
    section: Optional[str] = None
    key: Optional[str] = None
    key_indent = 0
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped[0] in '#;':
            key = None
            continue
        indent = len(line) - len(line.lstrip())
        if section is not None and key is not None and indent > key_indent:
            keys[(section, key)] = (keys[(section, key)][0], number + 1)
            sections[section] = (sections[section][0], number + 1)
            continue
        key, key_indent = None, indent
        match = _SECTION_LINE.match(stripped)
        if match:
            section = match.group('name')
            sections[section] = (number, number + 1)
            continue
        match = _KEY_LINE.match(stripped)
        if section is not None and match and match.group('key'):
            key = match.group('key').rstrip().lower()
            keys[(section, key)] = (number, number + 1)
            sections[section] = (sections[section][0], number + 1)
    return _Layout(sections, keys)


class _State(NamedTuple):
    path: str
    text: str
    raw: Dict[str, Dict[str, str]]
    layout: _Layout

    def line(self, section: str, key: Optional[str] = None) -> int:
        """1-based line of a section header or key (0 when absent)."""
        where = self.layout.keys.get((section, key)) if key else self.layout.sections.get(section)
        return where[0] + 1 if where else 0

    def where(self, section: str, key: Optional[str] = None) -> str:
        line = self.line(section, key)
        return (f'{self.path}' + (f' line {line}' if line else '') + f', section [{section}]'
                + (f', key {key!r}' if key else ''))


def _parse(text: str, path: str) -> _State:
    """Parse the file's text; any problem raises ConfigError naming the file and line."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, default_section='',
                                       empty_lines_in_values=False)
    hint = 'fix the file by hand (it was left unchanged)'
    try:
        parser.read_string(text, source=path)
    except configparser.DuplicateSectionError as error:
        raise ConfigError(f'{path} line {error.lineno}: section [{error.section}] appears '
                          f'twice; {hint}') from None
    except configparser.DuplicateOptionError as error:
        raise ConfigError(f'{path} line {error.lineno}: key {error.option!r} appears twice in '
                          f'section [{error.section}]; {hint}') from None
    except configparser.MissingSectionHeaderError as error:
        raise ConfigError(f'{path} line {error.lineno}: {error.line.strip()!r} comes before any '
                          f'[section]; {hint}') from None
    except configparser.ParsingError as error:
        lineno, line = error.errors[0][0], error.errors[0][1]
        raise ConfigError(f'{path} line {lineno}: cannot parse {line.strip()!r} (expected '
                          f'[section], key = value, or a # comment); {hint}') from None
    except configparser.Error as error:
        raise ConfigError(f'{path}: {error}; {hint}') from None
    raw = {name: dict(parser.items(name, raw=True)) for name in parser.sections()}
    state = _State(path, text, raw, _layout(text.splitlines(keepends=True)))
    found = {(s, k) for s, keys in raw.items() for k in keys}
    if state.layout.sections.keys() != raw.keys() or state.layout.keys.keys() != found:
        raise ConfigError(f'{path}: the layout of the file is too unusual to edit safely; '
                          f'{hint}')
    for section, keys in raw.items():
        for key, value in keys.items():
            if '\n' in value:
                raise ConfigError(f'{state.where(section, key)}: the value spans several lines;'
                                  f' one line per key, comments on their own lines; {hint}')
            if key in FORBIDDEN_KEYS:
                raise ConfigError(f'{state.where(section, key)}: passwords are never stored in '
                                  f'the file; remove the key and give the password through the '
                                  f'environment or a prompt')
    return state


_cache_lock = threading.RLock()
_cache: Dict[str, Tuple[Any, _State]] = {}


def _stamp(path: str) -> Any:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f'{path}: cannot read the config file: {error.strerror}') from None
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _read(path: str) -> _State:
    """The parsed file, from the cache unless it changed on disk; a missing file is empty."""
    with _cache_lock:
        stamp = _stamp(path)
        cached = _cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        if stamp is None:
            state = _parse('', path)
        else:
            try:
                with open(path, 'rb') as handle:
                    data = handle.read()
            except OSError as error:
                raise ConfigError(f'{path}: cannot read the config file: '
                                  f'{error.strerror}') from None
            try:
                text = data.decode('utf-8')
            except UnicodeDecodeError as error:
                line = data[:error.start].count(b'\n') + 1
                raise ConfigError(f'{path} line {line}: not UTF-8 text; fix the file by hand '
                                  '(it was left unchanged)') from None
            state = _parse(text, path)
            logger.debug('read config file %s', path)
        _cache[path] = (stamp, state)
        return state


def _state() -> _State:
    return _read(os.path.realpath(config_path()))


def _typed_setting(state: _State, section: str, key: str, raw: str) -> Any:
    value = parse_value(raw)
    if value is None:                        # an empty value means "not set"
        return DEFAULTS.get(section, {}).get(key)
    check = _SETTING_CHECKS.get((section, key))
    if check:
        try:
            value = check(value)
        except ValueError as problem:
            raise ConfigError(f'{state.where(section, key)}: {problem}') from None
    return value


_PROFILE_ERRORS = (OptionError, ConfigError)


def _profile_from(state: _State, name: str) -> Optional[Profile]:
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


def _profile_names(state: _State) -> List[str]:
    names = [s[len(PROFILE_PREFIX):] for s in state.raw if s.startswith(PROFILE_PREFIX)]
    return sorted({*names, *BUILTIN_PROFILES})


def _effective(state: _State) -> Dict[str, Dict[str, Any]]:
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


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------

class _WriteFailed(ConfigError):
    """The file system refused the write (permissions, disk full...)."""


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """Hold an exclusive flock on ``<path>.lock`` (other processes and threads wait)."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handle = os.open(path + '.lock', os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise _WriteFailed(f'{path}: cannot lock the config file: {error.strerror}') from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _replace(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a synced temporary file and a rename (mode 0600)."""
    if os.path.lexists(path) and not os.path.isfile(path):
        raise ConfigError(f'{path} is not a regular file; not writing to it')
    try:
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path),
                                             prefix='.' + os.path.basename(path) + '.')
    except OSError as error:
        raise _WriteFailed(f'{path}: cannot write the config file: {error.strerror}') from None
    try:
        with os.fdopen(handle, 'w', encoding='utf-8') as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _WriteFailed(f'{path}: cannot write the config file: {error}') from None
        raise


# an edit: ('set', section, key, text) | ('del', section, key, None)
#          | ('drop', section, None, None) | ('section', section, None, None): make it exist
_Edit = Tuple[str, str, Optional[str], Optional[str]]


def _apply(lines: List[str], edit: _Edit) -> List[str]:
    kind, section, key, text = edit
    layout = _layout(lines)
    if kind == 'section' and section in layout.sections:
        return lines
    if kind == 'drop':
        if section not in layout.sections:
            return lines
        start, end = layout.sections[section]
        while end < len(lines) and not lines[end].strip():
            end += 1
        return lines[:start] + lines[end:]
    where = layout.keys.get((section, key))
    if kind == 'del':
        return lines if where is None else lines[:where[0]] + lines[where[1]:]
    new = [] if kind == 'section' else [f'{key} = {text}\n' if text else f'{key} =\n']
    if where is not None:
        return lines[:where[0]] + new + lines[where[1]:]
    if section in layout.sections:
        end = layout.sections[section][1]
        return lines[:end] + new + lines[end:]
    gap = ['\n'] if lines and lines[-1].strip() else []
    return lines + gap + [f'[{section}]\n'] + new


def _expect(raw: Dict[str, Dict[str, str]], edit: _Edit) -> None:
    kind, section, key, text = edit
    if kind == 'drop':
        raw.pop(section, None)
    elif kind == 'del':
        raw.get(section, {}).pop(key, None)
    elif kind == 'section':
        raw.setdefault(section, {})
    else:
        raw.setdefault(section, {})[key] = text or ''


def _modify(plan: Callable[[_State], List[_Edit]]) -> _State:
    """Lock, re-read, plan edits on the fresh file, apply, verify, replace atomically."""
    path = os.path.realpath(config_path())
    with _locked(path), _cache_lock:
        _cache.pop(path, None)
        state = _read(path)
        edits = plan(state)
        lines = state.text.splitlines(keepends=True)
        if lines and not lines[-1].endswith('\n'):
            lines[-1] += '\n'
        expected = copy.deepcopy(state.raw)
        for edit in edits:
            lines = _apply(lines, edit)
            _expect(expected, edit)
        text = ''.join(lines)
        if text == state.text:
            return state
        new = _parse(text, path)
        if new.raw != expected:
            raise ConfigError(f'{path}: an edit would change more than asked; the file was '
                              'left unchanged (please report this)')
        _replace(path, text)
        _cache.pop(path, None)
        logger.debug('wrote config file %s: %s', path,
                     ', '.join(f'{k} [{s}] {n or ""}'.rstrip() for k, s, n, _ in edits))
        return _read(path)


def _check_names(section: Any, key: Any = None) -> None:
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
        except _WriteFailed as error:
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
    check = _SETTING_CHECKS.get((section, key))
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

    def plan(state: _State) -> List[_Edit]:
        if key is None:
            found.append(section in state.raw)
            return [('drop', section, None, None)]
        found.append(key in state.raw.get(section, {}))
        return [('del', section, key, None)]
    _modify(plan)
    return bool(found and found[0])


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
        close = difflib.get_close_matches(str(profile), names, n=3)
        raise ProfileError(f'no profile {profile!r} in {state.path} or built in; profiles: '
                           + ', '.join(names)
                           + (f' (did you mean {" or ".join(map(repr, close))}?)' if close else ''))
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

    def plan(state: _State) -> List[_Edit]:
        section = PROFILE_PREFIX + name
        base = _profile_from(state, name) if update else None
        merged = {**(base.to_dict() if base else {}), **given}
        for key in removed:
            merged.pop(key, None)
        profile = Profile(name, merged)
        result.append(profile)
        stored = {k: format_value(v) for k, v in profile.to_dict().items()}
        edits: List[_Edit] = [('del', section, k, None)
                              for k in state.raw.get(section, {}) if k not in stored]
        edits += [('set', section, k, v) for k, v in stored.items()]
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
    state = _read(os.path.realpath(path)) if path else _state()
    result = _effective(state)
    for name in _profile_names(state):
        _profile_from(state, name)
    return result

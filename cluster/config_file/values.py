"""Values in ``~/.cluster``: text <-> Python, checks of settings and connection keys.

:func:`parse_value` and :func:`format_value` convert between the file's text and Python
values; ``SETTING_CHECKS`` checks the built-in settings; :func:`parse_remote` and
:func:`check_connection` check the keys that say how to reach a remote cluster.
Everything public here is also importable from :mod:`cluster.config_file`.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from ..batch import SETTINGS as SYSTEM_SETTINGS
from ..batch import remote_qtypes
from ..run.errors import OptionError

logger = logging.getLogger(__name__)

_INT = re.compile(r'[+-]?\d+')
_FLOAT = re.compile(r'[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?')
_BOOLS = {'true': True, 'yes': True, 'on': True, 'false': False, 'no': False, 'off': False}


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
    if re.search(r'\s[#;]', text):
        raise OptionError(f'value {value!r} holds a # or ; after a space, which the file '
                          'reads as the start of a comment')
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


_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_.-]*')


def _name(value: Any) -> Any:
    """A batch system's name for one of its things (a parallel environment, a resource)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f'{value!r} is not a name (a letter or _, then letters, digits, '
                         '_ . -)')
    return value


#: checks of the built-in settings, by (section, key); each raises ValueError naming
#: the accepted forms
def _flag(value: Any) -> bool:
    """A yes/no setting (``progress``): a boolean, never a string that looks like one."""
    if isinstance(value, bool):
        return value
    raise ValueError(f'must be true or false, not {value!r}')


SETTING_CHECKS: Dict[Tuple[str, str], Callable[[Any], Any]] = {
    ('queue', 'max_queue_len'): _number(1, True, 'a whole number >= 1'),
    ('queue', 'queue_update'): _number(0.001, False, 'a number of seconds > 0'),
    ('jobqueue', 'cores'): _cores,
    ('records', 'retention_days'): _number(0.001, False, 'a number of days > 0'),
    **{(section, key): _name for section, keys in SYSTEM_SETTINGS.items() for key in keys},
    ('executor', 'progress'): _flag,
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


def check_connection(key: str, value: Any) -> Any:
    """Check one connection key and return its normalised value; ValueError says what is
    accepted."""
    if key == 'remote':
        parse_remote(value)
        return value.strip()
    if key == 'qtype':
        known = remote_qtypes()
        if not isinstance(value, str) or value.strip().lower() not in known:
            raise ValueError(f'{value!r} is not one of {", ".join(known)}')
        return value.strip().lower()
    if key == 'strict_host_key':
        typed = parse_value(value) if isinstance(value, str) else value
        if not isinstance(typed, bool):
            raise ValueError(f'{value!r} is not true or false')
        return typed
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'{value!r} is not a non-empty string')
    return value.strip()

"""Value normalisers of the keyword options: each checks one raw value and normalises it.

Every normaliser takes the value a user gave (``'4GB'``, ``'1-00:00:00'``, ``['ib', 'gpu']``)
and returns the normalised one, or raises :class:`BadValue` saying what is wrong with it;
:func:`cluster.options.check_arguments` names the keyword and the accepted forms.

>>> megabytes('1.5g'), hms_time('1-00:00:00'), str_list(feature)('ib,avx2')
(1536, '24:00:00', ['ib', 'avx2'])
"""
from __future__ import annotations

import datetime
import logging
import math
import os
import re
from fractions import Fraction
from typing import Any, Callable, List

from ..run.errors import OptionError
from ..script.files import check_name

logger = logging.getLogger(__name__)


class BadValue(ValueError):
    """Raised by a normaliser; :func:`cluster.options.check_arguments` makes it an OptionError."""


_SCALAR_REJECT = (list, tuple, set, frozenset, dict)
UNSAFE = re.compile(r'[\s\'"\\]|[\x00-\x1f\x7f]')


def _no_list(value: Any) -> None:
    if isinstance(value, _SCALAR_REJECT):
        raise BadValue(f'a {type(value).__name__} was given where a single value belongs')


def text(value: Any) -> str:
    """A str (or path) without newlines or control characters."""
    _no_list(value)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise BadValue(f'expected a string, got {type(value).__name__}')
    value = value.strip()
    if not value:
        raise BadValue('empty')
    if re.search(r'[\x00-\x1f\x7f]', value):
        raise BadValue('contains a newline or control character')
    return value


def word(value: Any) -> str:
    """A str without whitespace, quotes or backslashes (safe in a header line)."""
    value = text(value)
    if UNSAFE.search(value):
        raise BadValue('contains whitespace, a quote or a backslash')
    return value


def positive_int(value: Any) -> int:
    """A whole number of at least 1; a numeric string is accepted."""
    _no_list(value)
    if isinstance(value, bool):
        raise BadValue('a bool is not a count')
    if isinstance(value, str) and re.fullmatch(r'\s*\d+\s*', value):
        value = int(value)
    if not isinstance(value, int):
        raise BadValue('not a whole number')
    if value < 1:
        raise BadValue('must be at least 1')
    return value


def flag(value: Any) -> bool:
    """A bool (or 'yes'/'no', 'true'/'false', '1'/'0' from a config file or command line)."""
    _no_list(value)
    if isinstance(value, str) and value.strip().lower() in _FLAG_WORDS:
        return _FLAG_WORDS[value.strip().lower()]
    if not isinstance(value, bool):
        raise BadValue('not a bool')
    return value


_FLAG_WORDS = {'yes': True, 'true': True, '1': True, 'no': False, 'false': False, '0': False}


def count(value: Any) -> int:
    """A whole number of at least 0; a numeric string is accepted."""
    if isinstance(value, (int, str)) and not isinstance(value, bool) and \
            str(value).strip() == '0':
        return 0
    try:
        return positive_int(value)
    except BadValue as problem:
        raise BadValue('must be at least 0' if 'at least' in str(problem) else str(problem))


_MEM_RE = re.compile(r'(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?i?b?)', re.IGNORECASE)
_MEM_FACTOR = {'': 1024 ** 2, 'b': 1, 'k': 1024, 'm': 1024 ** 2, 'g': 1024 ** 3, 't': 1024 ** 4}


def megabytes(value: Any) -> int:
    """Megabytes (1024-based) as a positive int; strings may carry a unit."""
    _no_list(value)
    if isinstance(value, bool):
        raise BadValue('a bool is not an amount of memory')
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value <= 0:
            raise BadValue('must be more than 0')
        return max(1, math.ceil(Fraction(value)))
    if not isinstance(value, str):
        raise BadValue(f'expected a number or a string, got {type(value).__name__}')
    match = _MEM_RE.fullmatch(value.strip())
    unit = match.group(2).lower() if match else ''
    if not match or unit in ('i', 'ib') or (len(unit) > 1 and unit[0] == 'b'):
        raise BadValue('not a number with an optional unit')
    number = Fraction(match.group(1))
    if number <= 0:
        raise BadValue('must be more than 0')
    megabytes = number * _MEM_FACTOR[unit[:1]] / 1024 ** 2
    return max(1, math.ceil(megabytes))


_TIME_RE = re.compile(r'(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?')


def hms_time(value: Any) -> str:
    """``HH:MM:SS`` with days folded into hours."""
    _no_list(value)
    if isinstance(value, bool):
        raise BadValue('a bool is not a time')
    if isinstance(value, datetime.timedelta):
        seconds = math.ceil(value.total_seconds())
    elif isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        match = _TIME_RE.fullmatch(value.strip())
        if not match:
            raise BadValue('not a time')
        days, *fields = match.groups()
        fields = [int(f) for f in fields if f is not None]
        if days is not None and len(fields) != 3:
            raise BadValue('with days, give D-HH:MM:SS')
        if days is not None and fields[0] >= 24:
            raise BadValue('hours after days must be below 24')
        if any(f >= 60 for f in fields[1:]):
            raise BadValue('minutes and seconds must be below 60')
        seconds = 0
        for field in fields:
            seconds = seconds * 60 + field
        seconds += int(days or 0) * 86400
    else:
        raise BadValue(f'expected a string or an int, got {type(value).__name__}')
    if seconds < 1:
        raise BadValue('must be at least one second')
    hours, rest = divmod(seconds, 3600)
    return f'{hours:02d}:{rest // 60:02d}:{rest % 60:02d}'


def str_list(item_check: Callable[[str], str]) -> Callable[[Any], List[str]]:
    """A normaliser of a comma-separated string or list, each item checked by ``item_check``."""
    def normalise(value: Any) -> List[str]:
        if isinstance(value, str):
            items = value.split(',')
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise BadValue(f'expected a string or a list of strings, got {type(value).__name__}')
        result = []
        for item in items:
            if not isinstance(item, str):
                raise BadValue(f'item {item!r} is not a string')
            result.append(item_check(item))
        return result
    return normalise


def feature(item: str) -> str:
    """One node feature: letters, digits and _ . + -."""
    item = item.strip()
    if not re.fullmatch(r'[\w.+-]+', item):
        raise BadValue(f'feature {item!r} may only hold letters, digits and _ . + -')
    return item


def module_name(item: str) -> str:
    """One environment module name, e.g. ``python/3.11``."""
    item = item.strip()
    if not re.fullmatch(r'[\w.+/@:-]+', item):
        raise BadValue(f'module {item!r} may only hold letters, digits and _ . + / @ : -')
    return item


_IMPORT_RE = re.compile(r'(?:(?:from\s+[\w.]+\s+)?import\s+)?[\w.]+(?:\s+as\s+\w+)?'
                        r'(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*')


def import_statement(item: str) -> str:
    """A module name or one import statement, whitespace collapsed."""
    item = ' '.join(item.split())
    if not _IMPORT_RE.fullmatch(item) or (',' in item and 'import' not in item):
        raise BadValue(f'{item!r} is neither a module name nor one import statement')
    return item


def depends(value: Any) -> list:
    """Job ids (as str) and job objects (with ``.id``, kept as they are), in a list."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    result = []
    for item in items:
        if isinstance(item, bool) or item is None or isinstance(item, _SCALAR_REJECT):
            raise BadValue(f'item {item!r} is not a job id or a job')
        if isinstance(item, int):
            if item < 0:
                raise BadValue(f'job id {item!r} is negative')
            result.append(str(item))
        elif isinstance(item, str):
            result.append(word(item))
        elif hasattr(type(item), 'id') or hasattr(item, 'id'):  # no property call
            result.append(item)
        else:
            raise BadValue(f'item {item!r} is not a job id or a job')
    return result


def path(value: Any) -> str:
    """A path with ``~`` expanded."""
    return os.path.expanduser(text(value))


def abspath(value: Any) -> str:
    """An absolute path with ``~`` expanded."""
    return os.path.abspath(path(value))


def plain_name(value: Any) -> str:
    """A file-name part, by the rule of :func:`cluster.script.check_name`."""
    value = text(value)
    try:
        return check_name(value)
    except OptionError:
        raise BadValue('may only hold letters, digits and . _ + -') from None


_EXPORT_ITEM = re.compile(r'[A-Za-z_]\w*(?:=[^\s,\'"\\]*)?')


def export(value: Any) -> str:
    """``ALL``, ``NONE`` (upper-cased) or a list of NAME or NAME=value."""
    value = word(value)
    items = []
    for item in value.split(','):
        if item.upper() in ('ALL', 'NONE'):
            items.append(item.upper())
        elif _EXPORT_ITEM.fullmatch(item):
            items.append(item)
        else:
            raise BadValue(f'{item!r} is not ALL, NONE, NAME or NAME=value')
    if 'NONE' in items and len(items) > 1:
        raise BadValue('NONE cannot be combined with other items')
    return ','.join(items)


NOW_RE = re.compile(r'now(?:\+(\d+)(seconds?|minutes?|hours?|days?|weeks?)?)?', re.IGNORECASE)


def begin(value: Any) -> str:
    """A start time: ``now[+Nunits]``, ``HH:MM:SS`` or an ISO date-time (local time)."""
    _no_list(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone().replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat()
    value = word(value)
    now = NOW_RE.fullmatch(value)
    if now:
        count, unit = now.groups()
        if count is None:
            return 'now'
        return f'now+{int(count)}{(unit or "second").lower().rstrip("s")}s'
    if re.fullmatch(r'\d{1,2}:\d{2}(?::\d{2})?', value):
        parts = [int(p) for p in value.split(':')] + [0]
        hour, minute, second = parts[:3]
        if hour > 23 or minute > 59 or second > 59:
            raise BadValue('not a valid time of day')
        return f'{hour:02d}:{minute:02d}:{second:02d}'
    if re.fullmatch(r'\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?)?', value):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError as error:
            raise BadValue(str(error)) from None
        return moment.isoformat()
    raise BadValue('not a recognised start time')


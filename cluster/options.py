"""The keyword options of a job: one table, their checks, and their batch-system formats.

Every keyword a user may give to a job (``Job(..., mem='4GB', time='1-00:00:00')``), to a
profile in ``~/.cluster`` or on the command line is described once, in :data:`OPTIONS`:
its synonyms, how its value is checked and normalised, its default, its help text, and
how it is written into a slurm (``#SBATCH``) or torque (``#PBS``) script header.

Two kinds of options exist:

``directive``
    rendered into the script header by :func:`options_to_string`.
``job``
    used by the job code itself (``modules``, ``depends``, ``dir``, ``filedir``,
    ``suffix``, ``imports``) and never rendered.

>>> check_arguments({'memory': '4GB', 'walltime': '1-00:00:00', 'cpus': 4})
{'mem': 4096, 'time': '24:00:00', 'cores': 4}
>>> options_to_string({'mem': '4GB', 'cores': 2}, 'torque')
'#PBS -l nodes=1:ppn=2\\n#PBS -l mem=4096MB'

Torque notes: ``qos`` is written as ``-l qos=NAME`` (a Moab extension; plain Torque
without Moab may refuse it); ``begin`` is written in qsub's ``-a`` form
``[[CC]YY]MMDDhhmm.SS``, a relative ``now+N`` is turned into an absolute time when the
header is rendered; ``export='NONE'`` writes nothing, as torque exports no variables by
default; ``export='ALL'`` becomes ``-V``.
"""
from __future__ import annotations

import datetime
import difflib
import logging
import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .errors import OptionError
from .script import DEFAULT_SUFFIX, check_name

logger = logging.getLogger(__name__)

#: the systems whose script headers this module knows; local mode has no header
QTYPES: Tuple[str, ...] = ('slurm', 'torque', 'local')
PREFIX: Dict[str, str] = {'slurm': '#SBATCH', 'torque': '#PBS'}
HELP_MODES: Tuple[str, ...] = ('string', 'print', 'table', 'markdown')
GROUPS: Tuple[str, ...] = ('resources', 'scheduling', 'files', 'environment')


class _Bad(ValueError):
    """Raised by a normaliser; :func:`check_arguments` turns it into an OptionError."""


# ---------------------------------------------------------------------------------------
# normalisers: each takes the raw value and returns the normalised one, or raises _Bad
# ---------------------------------------------------------------------------------------

_SCALAR_REJECT = (list, tuple, set, frozenset, dict)
_UNSAFE = re.compile(r'[\s\'"\\]|[\x00-\x1f\x7f]')


def _no_list(value: Any) -> None:
    if isinstance(value, _SCALAR_REJECT):
        raise _Bad(f'a {type(value).__name__} was given where a single value belongs')


def _text(value: Any) -> str:
    """A str (or path) without newlines or control characters."""
    _no_list(value)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise _Bad(f'expected a string, got {type(value).__name__}')
    value = value.strip()
    if not value:
        raise _Bad('empty')
    if re.search(r'[\x00-\x1f\x7f]', value):
        raise _Bad('contains a newline or control character')
    return value


def _word(value: Any) -> str:
    """A str without whitespace, quotes or backslashes (safe in a header line)."""
    value = _text(value)
    if _UNSAFE.search(value):
        raise _Bad('contains whitespace, a quote or a backslash')
    return value


def _positive_int(value: Any) -> int:
    _no_list(value)
    if isinstance(value, bool):
        raise _Bad('a bool is not a count')
    if isinstance(value, str) and re.fullmatch(r'\s*\d+\s*', value):
        value = int(value)
    if not isinstance(value, int):
        raise _Bad('not a whole number')
    if value < 1:
        raise _Bad('must be at least 1')
    return value


_MEM_RE = re.compile(r'(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?i?b?)', re.IGNORECASE)
_MEM_FACTOR = {'': 1024 ** 2, 'b': 1, 'k': 1024, 'm': 1024 ** 2, 'g': 1024 ** 3, 't': 1024 ** 4}


def _mem(value: Any) -> int:
    """Megabytes (1024-based) as a positive int; strings may carry a unit."""
    _no_list(value)
    if isinstance(value, bool):
        raise _Bad('a bool is not an amount of memory')
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value <= 0:
            raise _Bad('must be more than 0')
        return max(1, math.ceil(Fraction(value)))
    if not isinstance(value, str):
        raise _Bad(f'expected a number or a string, got {type(value).__name__}')
    match = _MEM_RE.fullmatch(value.strip())
    unit = match.group(2).lower() if match else ''
    if not match or unit in ('i', 'ib') or (len(unit) > 1 and unit[0] == 'b'):
        raise _Bad('not a number with an optional unit')
    number = Fraction(match.group(1))
    if number <= 0:
        raise _Bad('must be more than 0')
    megabytes = number * _MEM_FACTOR[unit[:1]] / 1024 ** 2
    return max(1, math.ceil(megabytes))


_TIME_RE = re.compile(r'(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?')


def _time(value: Any) -> str:
    """``HH:MM:SS`` with days folded into hours."""
    _no_list(value)
    if isinstance(value, bool):
        raise _Bad('a bool is not a time')
    if isinstance(value, datetime.timedelta):
        seconds = math.ceil(value.total_seconds())
    elif isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        match = _TIME_RE.fullmatch(value.strip())
        if not match:
            raise _Bad('not a time')
        days, *fields = match.groups()
        fields = [int(f) for f in fields if f is not None]
        if days is not None and len(fields) != 3:
            raise _Bad('with days, give D-HH:MM:SS')
        if days is not None and fields[0] >= 24:
            raise _Bad('hours after days must be below 24')
        if any(f >= 60 for f in fields[1:]):
            raise _Bad('minutes and seconds must be below 60')
        seconds = 0
        for field in fields:
            seconds = seconds * 60 + field
        seconds += int(days or 0) * 86400
    else:
        raise _Bad(f'expected a string or an int, got {type(value).__name__}')
    if seconds < 1:
        raise _Bad('must be at least one second')
    hours, rest = divmod(seconds, 3600)
    return f'{hours:02d}:{rest // 60:02d}:{rest % 60:02d}'


def _str_list(item_check: Callable[[str], str]) -> Callable[[Any], List[str]]:
    def normalise(value: Any) -> List[str]:
        if isinstance(value, str):
            items = value.split(',')
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise _Bad(f'expected a string or a list of strings, got {type(value).__name__}')
        result = []
        for item in items:
            if not isinstance(item, str):
                raise _Bad(f'item {item!r} is not a string')
            result.append(item_check(item))
        return result
    return normalise


def _feature(item: str) -> str:
    item = item.strip()
    if not re.fullmatch(r'[\w.+-]+', item):
        raise _Bad(f'feature {item!r} may only hold letters, digits and _ . + -')
    return item


def _module(item: str) -> str:
    item = item.strip()
    if not re.fullmatch(r'[\w.+/@:-]+', item):
        raise _Bad(f'module {item!r} may only hold letters, digits and _ . + / @ : -')
    return item


_IMPORT_RE = re.compile(r'(?:(?:from\s+[\w.]+\s+)?import\s+)?[\w.]+(?:\s+as\s+\w+)?'
                        r'(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*')


def _import(item: str) -> str:
    item = ' '.join(item.split())
    if not _IMPORT_RE.fullmatch(item) or (',' in item and 'import' not in item):
        raise _Bad(f'{item!r} is neither a module name nor one import statement')
    return item


def _depends(value: Any) -> list:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    result = []
    for item in items:
        if isinstance(item, bool) or item is None or isinstance(item, _SCALAR_REJECT):
            raise _Bad(f'item {item!r} is not a job id or a job')
        if isinstance(item, int):
            if item < 0:
                raise _Bad(f'job id {item!r} is negative')
            result.append(str(item))
        elif isinstance(item, str):
            result.append(_word(item))
        elif hasattr(item, 'id'):
            result.append(item)
        else:
            raise _Bad(f'item {item!r} is not a job id or a job')
    return result


def _path(value: Any) -> str:
    return os.path.expanduser(_text(value))


def _abspath(value: Any) -> str:
    return os.path.abspath(_path(value))


def _plain_name(value: Any) -> str:
    """A file-name part, by the rule of :func:`cluster.script.check_name`."""
    value = _text(value)
    try:
        return check_name(value)
    except OptionError:
        raise _Bad('may only hold letters, digits and . _ + -') from None


_EXPORT_ITEM = re.compile(r'[A-Za-z_]\w*(?:=[^\s,\'"\\]*)?')


def _export(value: Any) -> str:
    value = _word(value)
    items = []
    for item in value.split(','):
        if item.upper() in ('ALL', 'NONE'):
            items.append(item.upper())
        elif _EXPORT_ITEM.fullmatch(item):
            items.append(item)
        else:
            raise _Bad(f'{item!r} is not ALL, NONE, NAME or NAME=value')
    if 'NONE' in items and len(items) > 1:
        raise _Bad('NONE cannot be combined with other items')
    return ','.join(items)


_NOW_RE = re.compile(r'now(?:\+(\d+)(seconds?|minutes?|hours?|days?|weeks?)?)?', re.IGNORECASE)


def _begin(value: Any) -> str:
    _no_list(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone().replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat()
    value = _word(value)
    now = _NOW_RE.fullmatch(value)
    if now:
        count, unit = now.groups()
        if count is None:
            return 'now'
        return f'now+{int(count)}{(unit or "second").lower().rstrip("s")}s'
    if re.fullmatch(r'\d{1,2}:\d{2}(?::\d{2})?', value):
        parts = [int(p) for p in value.split(':')] + [0]
        hour, minute, second = parts[:3]
        if hour > 23 or minute > 59 or second > 59:
            raise _Bad('not a valid time of day')
        return f'{hour:02d}:{minute:02d}:{second:02d}'
    if re.fullmatch(r'\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?)?', value):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError as error:
            raise _Bad(str(error)) from None
        return moment.isoformat()
    raise _Bad('not a recognised start time')


# ---------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One keyword option.

    ``slurm``/``torque`` are templates of the header argument with ``{}`` for the value
    (None: the system lacks the option); ``metavar`` names the value in help texts;
    ``accepts`` lists the accepted forms (shown in errors and help).
    """

    name: str
    synonyms: Tuple[str, ...]
    normalise: Callable[[Any], Any]
    accepts: str
    default: Any
    help: str
    slurm: Optional[str]
    torque: Optional[str]
    local: str
    kind: str = 'directive'
    group: str = 'scheduling'
    metavar: str = 'VALUE'

    @property
    def directive(self) -> bool:
        return self.kind == 'directive'


_WORD_ACCEPTS = 'a string without whitespace, quotes or backslashes'

_TABLE = (
    # resources
    Option('cores', ('cpus', 'threads'), _positive_int, 'a positive int (or numeric string)',
           1, 'CPU cores the job needs on each node',
           '--cpus-per-task={}', '-l nodes=1:ppn={}',
           'cores reserved in the local job queue', group='resources', metavar='N'),
    Option('nodes', (), _positive_int, 'a positive int (or numeric string)',
           1, 'number of nodes', '--nodes={}', '-l nodes={}',
           'ignored: one machine', group='resources', metavar='N'),
    Option('mem', ('memory',), _mem,
           'an int in MB, or a string with a unit b, k/kb, m/mb, g/gb, t/tb '
           '(any case, 1024-based, decimals allowed): 4096, "4GB", "1.5g"',
           None, 'memory in MB (slurm: per node; torque: for the whole job)',
           '--mem={}', '-l mem={}MB', 'not enforced', group='resources', metavar='N'),
    Option('time', ('walltime',), _time,
           'D-HH:MM:SS, HH:MM:SS, MM:SS or SS (an int is seconds)',
           None, 'wall-clock time limit, normalised to HH:MM:SS',
           '--time={}', '-l walltime={}', 'not enforced', group='resources',
           metavar='HH:MM:SS'),
    Option('features', ('constraint',), _str_list(_feature),
           'a comma-separated string or a list of strings (letters, digits, _ . + -)',
           None, 'node features the job needs (all of them)',
           '--constraint={}', '-l nodes=1:{}', 'ignored', group='resources',
           metavar='F1,F2'),
    # scheduling
    Option('partition', ('queue',), _word, _WORD_ACCEPTS, None, 'partition (queue) to use',
           '--partition={}', '-q {}', 'ignored', metavar='NAME'),
    Option('account', (), _word, _WORD_ACCEPTS, None, 'account to charge',
           '--account={}', '-A {}', 'ignored', metavar='NAME'),
    Option('qos', (), _word, _WORD_ACCEPTS, None,
           'quality of service (torque: a Moab extension)',
           '--qos={}', '-l qos={}', 'ignored', metavar='NAME'),
    Option('name', ('jobname',), _plain_name, 'letters, digits and . _ + -', None,
           'job name shown by the batch system (defaults to the job file name)',
           '--job-name={}', '-N {}', 'the job name', metavar='NAME'),
    Option('export', (), _export,
           'ALL, NONE, or a comma-separated list of NAME or NAME=value (no spaces)',
           None, 'environment variables passed to the job',
           '--export={}', '-v {}', 'the whole environment is passed', metavar='VARS'),
    Option('begin', (), _begin,
           'YYYY-MM-DD[THH:MM[:SS]], HH:MM[:SS], now, now+N[seconds|minutes|hours|days|weeks] '
           'or a datetime',
           None, 'earliest start time', '--begin={}', '-a {}', 'ignored', metavar='TIME'),
    Option('depends', ('depend', 'dependency', 'dependencies'), _depends,
           'a job id (str or int), a job object (with .id), or a list of them',
           None, 'jobs that must complete successfully first',
           None, None, 'waits for those jobs in the local queue', kind='job'),
    # files
    Option('outfile', ('stdout',), _path, 'a path (str or os.PathLike)', None,
           'file for standard output (default <name>.<suffix>.out)',
           '--output={}', '-o {}', 'file for standard output', group='files', metavar='PATH'),
    Option('errfile', ('stderr',), _path, 'a path (str or os.PathLike)', None,
           'file for standard error (default <name>.<suffix>.err)',
           '--error={}', '-e {}', 'file for standard error', group='files', metavar='PATH'),
    Option('dir', ('path', 'runpath'), _abspath, 'a path (str or os.PathLike), made absolute',
           None, 'directory the job runs in (default: the current one)',
           None, None, 'directory the job runs in', kind='job', group='files'),
    Option('filedir', ('scriptpath',), _abspath,
           'a path (str or os.PathLike), made absolute', None,
           'directory for the job scripts and outputs (default: dir)',
           None, None, 'directory for the job files', kind='job', group='files'),
    Option('suffix', (), _plain_name, 'letters, digits and . _ + -', DEFAULT_SUFFIX,
           'suffix of the job files: <name>.<suffix>.out', None, None,
           'suffix of the job files', kind='job', group='files'),
    # environment
    Option('modules', (), _str_list(_module),
           'a comma-separated string or a list of module names', None,
           'environment modules loaded (module load) before the job runs',
           None, None, 'loaded if the module command exists', kind='job', group='environment'),
    Option('imports', (), _str_list(_import),
           'a comma-separated string or a list of module names or import statements '
           '("numpy", "import numpy as np", "from os import path")', None,
           'imports a function job needs before its function is unpickled',
           None, None, 'imported before the function is unpickled', kind='job',
           group='environment'),
)

#: canonical name -> :class:`Option`, in table order (the order headers are written in)
OPTIONS: Dict[str, Option] = {option.name: option for option in _TABLE}
#: synonym -> canonical name
SYNONYMS: Dict[str, str] = {syn: option.name for option in _TABLE for syn in option.synonyms}


def _suggest(key: str) -> str:
    """'did you mean ...?' from close names and synonyms, else the list of keywords."""
    found: Dict[str, str] = {}
    for match in difflib.get_close_matches(key.lower(), [*OPTIONS, *SYNONYMS], n=4, cutoff=0.6):
        found.setdefault(SYNONYMS.get(match, match), match)
    if not found:
        return 'known keywords: ' + ', '.join(OPTIONS)
    return 'did you mean ' + ' or '.join(
        repr(name) if match == name else f'{match!r} (synonym of {name!r})'
        for name, match in found.items()) + '?'


def canonical(name: str) -> str:
    """The canonical name of a keyword or synonym (case-insensitive).

    >>> canonical('walltime')
    'time'
    """
    if not isinstance(name, str):
        raise OptionError(f'keyword {name!r} is not a string')
    key = name.strip().lower()
    if key in OPTIONS:
        return key
    if key in SYNONYMS:
        return SYNONYMS[key]
    raise OptionError(f'unknown keyword {name!r}; {_suggest(name)}')


def _normalise(option: Option, given: str, value: Any) -> Any:
    try:
        return option.normalise(value)
    except _Bad as problem:
        label = repr(given) if given == option.name else f'{given!r} ({option.name})'
        raise OptionError(f'bad value for keyword {label}: {value!r}: {problem}; '
                          f'accepted: {option.accepts}') from None


def check_arguments(kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    """Check and normalise keyword options; return a new dict keyed by canonical names.

    Only the given keys are returned (no defaults added); a value of None is kept as
    None (not set). Raises :class:`~cluster.errors.OptionError` for an unknown keyword,
    a malformed value, or one option given twice through synonyms.

    >>> check_arguments({'memory': '4GB', 'walltime': '1-00:00:00', 'cpus': 4})
    {'mem': 4096, 'time': '24:00:00', 'cores': 4}
    """
    if not isinstance(kwargs, Mapping):
        raise OptionError(f'options must be a dict, got {type(kwargs).__name__}')
    given_as: Dict[str, str] = {}
    result: Dict[str, Any] = {}
    for key, value in kwargs.items():
        name = canonical(key)
        if name in given_as:
            raise OptionError(f'keyword {name!r} given twice: as {given_as[name]!r} and as '
                              f'{key!r}; give only one')
        given_as[name] = key
        result[name] = None if value is None else _normalise(OPTIONS[name], key, value)
    return result


# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------

def _qtype(qtype: Optional[str]) -> str:
    if qtype is None:
        from . import batch
        return batch.detect()
    if qtype not in QTYPES:
        raise OptionError(f'unknown qtype {qtype!r}; known: {", ".join(QTYPES)}')
    return qtype


def _torque_begin(value: str) -> str:
    """qsub -a form ``CCYYMMDDhhmm.SS`` (or ``hhmm.SS`` for a time of day)."""
    if re.fullmatch(r'\d{2}:\d{2}:\d{2}', value):
        hour, minute, second = value.split(':')
        return f'{hour}{minute}.{second}'
    now = _NOW_RE.fullmatch(value)
    if now:
        count, unit = now.groups()
        delta = datetime.timedelta(**{unit or 'seconds': int(count or 0)})
        moment = datetime.datetime.now().replace(microsecond=0) + delta
    else:
        moment = datetime.datetime.fromisoformat(value)
    return moment.strftime('%Y%m%d%H%M.%S')


def _torque_nodes(nodes: Optional[int], cores: Optional[int], features: Optional[list]) -> str:
    """The one torque resource line for nodes, cores and features."""
    spec = f'nodes={nodes or 1}'
    if cores:
        spec += f':ppn={cores}'
    if features:
        spec += ':' + ':'.join(features)
    return f'{PREFIX["torque"]} -l {spec}'


_LIST_SEPARATOR = {'slurm': '&', 'torque': ':'}


def _argument(option: Option, value: Any, qtype: str) -> Optional[List[str]]:
    """The header arguments (without prefix) for one normalised value; None if lacking."""
    template = getattr(option, qtype, None) if option.directive else None
    if template is None:
        return None
    if option.name == 'features':
        if not value:
            return []
        value = _LIST_SEPARATOR[qtype].join(value)
    elif qtype == 'torque' and option.name == 'begin':
        value = _torque_begin(value)
    elif qtype == 'torque' and option.name == 'export':
        items = value.split(',')
        rest = [item for item in items if item not in ('ALL', 'NONE')]
        return (['-V'] if 'ALL' in items else []) + ([template.format(','.join(rest))]
                                                     if rest else [])
    if _UNSAFE.search(str(value)):
        raise OptionError(f'value of keyword {option.name!r} cannot go into a {qtype} header '
                          f'line: {value!r} contains whitespace, a quote or a backslash')
    return [template.format(value)]


def option_to_string(option: str, value: Any = None, qtype: Optional[str] = None) -> str:
    """One header directive for ``option``, e.g. ``#SBATCH --mem=4096``.

    ``value=None`` uses the option's default. An option the batch system lacks, a
    'job'-kind option, local mode, or no value at all give a debug log line and ''.
    ``qtype=None`` detects the batch system.

    >>> option_to_string('memory', '4GB', 'torque')
    '#PBS -l mem=4096MB'
    """
    name = canonical(option)
    spec = OPTIONS[name]
    qtype = _qtype(qtype)
    value = spec.default if value is None else check_arguments({option: value})[name]
    if qtype not in PREFIX:
        logger.debug('%s mode has no script header; option %r not rendered', qtype, name)
        return ''
    if value is None:
        logger.debug('option %r has no value and no default; not rendered', name)
        return ''
    arguments = _argument(spec, value, qtype)
    if arguments is None:
        logger.debug('%s has no directive for option %r (%s option); not rendered',
                     qtype, name, spec.kind)
        return ''
    if not arguments:
        logger.debug('option %r with value %r writes nothing for %s', name, value, qtype)
    return '\n'.join(f'{PREFIX[qtype]} {argument}' for argument in arguments)


def options_to_string(option_dict: Mapping[str, Any], qtype: Optional[str] = None) -> str:
    """All header directives for ``option_dict``, one per line, in table order.

    The dict is checked with :func:`check_arguments` first; None values and 'job'-kind
    options are skipped. For torque, nodes, cores and features form one line
    ``#PBS -l nodes=N:ppn=C:feature1:feature2``. Local mode gives ''.

    >>> options_to_string({'walltime': 90, 'partition': 'short'}, 'slurm')
    '#SBATCH --time=00:01:30\\n#SBATCH --partition=short'
    """
    options = check_arguments(option_dict)
    qtype = _qtype(qtype)
    if qtype not in PREFIX:
        return ''
    lines: List[str] = []
    node_line_done = False
    for name, spec in OPTIONS.items():
        value = options.get(name)
        if value is None or not spec.directive:
            continue
        if qtype == 'torque' and name in ('nodes', 'cores', 'features'):
            if not node_line_done:
                node_line_done = True
                nodes, cores, features = (options.get(n) for n in ('nodes', 'cores', 'features'))
                if nodes or cores or features:
                    lines.append(_torque_nodes(nodes, cores, features))
            continue
        text = option_to_string(name, value, qtype)
        if text:
            lines.append(text)
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------
# help
# ---------------------------------------------------------------------------------------

def _format_for(option: Option, qtype: str) -> str:
    """How ``option`` appears in a ``qtype`` script, for help texts."""
    if qtype == 'local':
        return option.local
    if not option.directive:
        return '(used by the job code; not a header line)'
    template = getattr(option, qtype)
    if template is None:
        return '(not available)'
    metavar = option.metavar
    if option.name == 'features':
        metavar = _LIST_SEPARATOR[qtype].join(metavar.split(','))
    return f'{PREFIX[qtype]} {template.format(metavar)}'


def _help_qtypes(qtype: Optional[str]) -> Tuple[str, ...]:
    if qtype is None:
        return QTYPES
    if qtype not in QTYPES:
        raise OptionError(f'unknown qtype {qtype!r}; known: {", ".join(QTYPES)}')
    return (qtype,)


def _help_text(qtypes: Tuple[str, ...]) -> str:
    lines = ['Keyword options (synonyms in brackets, default after "=").', '']
    for group in GROUPS:
        lines.append(group.capitalize())
        for option in OPTIONS.values():
            if option.group != group:
                continue
            title = option.name
            if option.synonyms:
                title += ' [' + ', '.join(option.synonyms) + ']'
            if option.default is not None:
                title += f' = {option.default!r}'
            lines.append(f'  {title}')
            lines.append(f'      {option.help}')
            lines.append(f'      accepts: {option.accepts}')
            for qtype in qtypes:
                lines.append(f'      {qtype + ":":8}{_format_for(option, qtype)}')
        lines.append('')
    if 'torque' in qtypes:
        lines.append('On torque, nodes, cores and features form one line: '
                     '#PBS -l nodes=N:ppn=C:F1:F2.')
    return '\n'.join(lines)


def _help_rows(qtypes: Tuple[str, ...]) -> Tuple[List[str], List[List[str]]]:
    header = ['Keyword', 'Synonyms', 'Default', *[q.capitalize() for q in qtypes],
              'Accepts', 'Description']
    rows = []
    for option in OPTIONS.values():
        formats = [_format_for(option, q) for q in qtypes]
        rows.append([option.name, ', '.join(option.synonyms),
                     '' if option.default is None else repr(option.default),
                     *formats, option.accepts, option.help])
    return header, rows


def _is_directive_text(text: str) -> bool:
    return text.startswith(tuple(PREFIX.values()))


def _rst_cell(text: str) -> str:
    if not text:
        return ''
    if _is_directive_text(text):
        return f'``{text}``'
    return re.sub(r'([\\*`|_])', r'\\\1', text)


def _md_cell(text: str) -> str:
    text = text.replace('|', '\\|')
    return f'`{text}`' if _is_directive_text(text) else text


def _help_table(qtypes: Tuple[str, ...], markdown: bool) -> str:
    header, rows = _help_rows(qtypes)
    if markdown:
        lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
        lines += ['| ' + ' | '.join(_md_cell(c) for c in row) + ' |' for row in rows]
        return '\n'.join(lines) + '\n'
    lines = ['.. list-table:: Keyword options', '   :header-rows: 1', '']
    for row in [header] + rows:
        cells = [_rst_cell(c) for c in row]
        lines.append(f'   * - {cells[0]}')
        lines += [f'     - {cell}'.rstrip() for cell in cells[1:]]
    return '\n'.join(lines) + '\n'


def option_help(qtype: Optional[str] = None, mode: str = 'string') -> Optional[str]:
    """Describe every keyword option.

    ``qtype`` limits the formats shown to one system (None: all of them). ``mode`` is
    'string' (return a readable listing), 'print' (print it, return None), 'table'
    (return a reStructuredText table) or 'markdown' (return a Markdown table).
    """
    if mode not in HELP_MODES:
        raise ValueError(f'unknown mode {mode!r}; accepted modes: {", ".join(HELP_MODES)}')
    qtypes = _help_qtypes(qtype)
    if mode in ('table', 'markdown'):
        return _help_table(qtypes, markdown=mode == 'markdown')
    text = _help_text(qtypes)
    if mode == 'print':
        print(text)
        return None
    return text

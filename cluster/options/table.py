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

The value checks live in :mod:`cluster.option_values`, the help texts in
:mod:`cluster.option_docs`.

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
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import values
from ..errors import OptionError
from ..script import DEFAULT_SUFFIX

logger = logging.getLogger(__name__)

#: the systems whose script headers this module knows; local mode has no header
QTYPES: Tuple[str, ...] = ('slurm', 'torque', 'local')
PREFIX: Dict[str, str] = {'slurm': '#SBATCH', 'torque': '#PBS'}
#: the groups options are listed in by the help
GROUPS: Tuple[str, ...] = ('resources', 'scheduling', 'files', 'environment')


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
    Option('cores', ('cpus',), values.positive_int, 'a positive int (or numeric string)',
           1, 'CPU cores the job needs on each node',
           '--cpus-per-task={}', '-l nodes=1:ppn={}',
           'cores reserved in the local job queue', group='resources', metavar='N'),
    Option('nodes', (), values.positive_int, 'a positive int (or numeric string)',
           1, 'number of nodes', '--nodes={}', '-l nodes={}',
           'ignored: one machine', group='resources', metavar='N'),
    Option('mem', ('memory',), values.megabytes,
           'an int in MB, or a string with a unit b, k/kb, m/mb, g/gb, t/tb '
           '(any case, 1024-based, decimals allowed): 4096, "4GB", "1.5g"',
           None, 'memory in MB (slurm: per node; torque: for the whole job)',
           '--mem={}', '-l mem={}MB', 'not enforced', group='resources', metavar='N'),
    Option('time', ('walltime',), values.hms_time,
           'D-HH:MM:SS, HH:MM:SS, MM:SS or SS (an int is seconds)',
           None, 'wall-clock time limit, normalised to HH:MM:SS',
           '--time={}', '-l walltime={}', 'killed at the limit (timeout)', group='resources',
           metavar='HH:MM:SS'),
    Option('features', ('constraint',), values.str_list(values.feature),
           'a comma-separated string or a list of strings (letters, digits, _ . + -)',
           None, 'node features the job needs (all of them)',
           '--constraint={}', '-l nodes=1:{}', 'ignored', group='resources',
           metavar='F1,F2'),
    Option('threads', (), values.positive_int, 'a positive int (or numeric string)', None,
           'local mode only: cores of the local job queue, if this job starts it',
           None, None, 'cores of the local job queue when this job starts it (a running '
           'queue keeps its size)', kind='job', group='resources', metavar='N'),
    # scheduling
    Option('partition', ('queue',), values.word, _WORD_ACCEPTS, None, 'partition (queue) to use',
           '--partition={}', '-q {}', 'ignored', metavar='NAME'),
    Option('account', (), values.word, _WORD_ACCEPTS, None, 'account to charge',
           '--account={}', '-A {}', 'ignored', metavar='NAME'),
    Option('qos', (), values.word, _WORD_ACCEPTS, None,
           'quality of service (torque: a Moab extension)',
           '--qos={}', '-l qos={}', 'ignored', metavar='NAME'),
    Option('name', ('jobname',), values.plain_name, 'letters, digits and . _ + -', None,
           'job name shown by the batch system (defaults to the job file name)',
           '--job-name={}', '-N {}', 'the job name', metavar='NAME'),
    Option('export', (), values.export,
           'ALL, NONE, or a comma-separated list of NAME or NAME=value (no spaces)',
           None, 'environment variables passed to the job',
           '--export={}', '-v {}', 'the whole environment is passed', metavar='VARS'),
    Option('begin', (), values.begin,
           'YYYY-MM-DD[THH:MM[:SS]], HH:MM[:SS], now, now+N[seconds|minutes|hours|days|weeks] '
           'or a datetime',
           None, 'earliest start time', '--begin={}', '-a {}', 'ignored', metavar='TIME'),
    Option('depends', ('depend', 'dependency', 'dependencies'), values.depends,
           'a job id (str or int), a job object (with .id), or a list of them',
           None, 'jobs that must complete successfully first',
           None, None, 'waits for those jobs in the local queue', kind='job'),
    # files
    Option('outfile', ('stdout',), values.path, 'a path (str or os.PathLike)', None,
           'file for standard output (default <name>.<suffix>.out)',
           '--output={}', '-o {}', 'file for standard output', group='files', metavar='PATH'),
    Option('errfile', ('stderr',), values.path, 'a path (str or os.PathLike)', None,
           'file for standard error (default <name>.<suffix>.err)',
           '--error={}', '-e {}', 'file for standard error', group='files', metavar='PATH'),
    Option('dir', ('path', 'runpath'), values.abspath,
           'a path (str or os.PathLike), made absolute', None,
           'directory the job runs in (default: the current one)',
           None, None, 'directory the job runs in', kind='job', group='files'),
    Option('filedir', ('scriptpath',), values.abspath,
           'a path (str or os.PathLike), made absolute', None,
           'directory for the job scripts and outputs (default: dir)',
           None, None, 'directory for the job files', kind='job', group='files'),
    Option('suffix', (), values.plain_name, 'letters, digits and . _ + -', DEFAULT_SUFFIX,
           'suffix of the job files: <name>.<suffix>.out', None, None,
           'suffix of the job files', kind='job', group='files'),
    # environment
    Option('modules', (), values.str_list(values.module_name),
           'a comma-separated string or a list of module names', None,
           'environment modules loaded (module load) before the job runs',
           None, None, 'loaded if the module command exists', kind='job', group='environment'),
    Option('imports', (), values.str_list(values.import_statement),
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
    except values.BadValue as problem:
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
        from .. import batch
        return batch.detect()
    if qtype not in QTYPES:
        raise OptionError(f'unknown qtype {qtype!r}; known: {", ".join(QTYPES)}')
    return qtype


def _torque_begin(value: str) -> str:
    """qsub -a form ``CCYYMMDDhhmm.SS`` (or ``hhmm.SS`` for a time of day)."""
    if re.fullmatch(r'\d{2}:\d{2}:\d{2}', value):
        hour, minute, second = value.split(':')
        return f'{hour}{minute}.{second}'
    now = values.NOW_RE.fullmatch(value)
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


#: how a list value (features) is joined in a header line
LIST_SEPARATOR: Dict[str, str] = {'slurm': '&', 'torque': ':'}


def _argument(option: Option, value: Any, qtype: str) -> Optional[List[str]]:
    """The header arguments (without prefix) for one normalised value; None if lacking."""
    template = getattr(option, qtype, None) if option.directive else None
    if template is None:
        return None
    if option.name == 'features':
        if not value:
            return []
        value = LIST_SEPARATOR[qtype].join(value)
    elif qtype == 'torque' and option.name == 'begin':
        value = _torque_begin(value)
    elif qtype == 'torque' and option.name == 'export':
        items = value.split(',')
        rest = [item for item in items if item not in ('ALL', 'NONE')]
        return (['-V'] if 'ALL' in items else []) + ([template.format(','.join(rest))]
                                                     if rest else [])
    if values.UNSAFE.search(str(value)):
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


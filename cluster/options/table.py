"""The keyword options of a job: one table and its checks.

Every keyword a user may give to a job (``Job(..., mem='4GB', time='1-00:00:00')``), to a
profile in ``~/.cluster`` or on the command line is described once, in :data:`OPTIONS`:
its synonyms, how its value is checked and normalised, its default and its help text.
How a keyword is written into a script header is each batch system's own (its
``directives`` in :mod:`cluster.batch`); :func:`option_to_string` and
:func:`options_to_string` check the values here and hand them to that system.

Two kinds of options exist:

``directive``
    rendered into the script header by :func:`options_to_string`.
``job``
    used by the job code itself (``modules``, ``depends``, ``dir``, ``filedir``,
    ``suffix``, ``imports``) and never rendered.

The value checks live in :mod:`cluster.options.values`, the help texts in
:mod:`cluster.options.docs`.

>>> check_arguments({'memory': '4GB', 'walltime': '1-00:00:00', 'cpus': 4})
{'mem': 4096, 'time': '24:00:00', 'cores': 4}
>>> options_to_string({'mem': '4GB', 'cores': 2}, 'torque')
'#PBS -l nodes=1:ppn=2\\n#PBS -l mem=4096MB'
"""
from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Type

from .. import batch
from ..batch import BatchSystem
from ..run.errors import OptionError
from ..script.files import DEFAULT_SUFFIX
from . import values

logger = logging.getLogger(__name__)

#: the groups options are listed in by the help
GROUPS: Tuple[str, ...] = ('resources', 'scheduling', 'files', 'environment')


# ---------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One keyword option: its names, check, default and help; how each batch system
    writes it is that system's (``directives`` in :mod:`cluster.batch`).

    ``metavar`` names the value in help texts; ``accepts`` lists the accepted forms
    (shown in errors and help); ``kind`` 'job' marks an option the job code uses itself.
    """

    name: str
    synonyms: Tuple[str, ...]
    normalise: Callable[[Any], Any]
    accepts: str
    default: Any
    help: str
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
           1, 'CPU cores the job needs on each node', group='resources', metavar='N'),
    Option('nodes', (), values.positive_int, 'a positive int (or numeric string)',
           1, 'number of nodes', group='resources', metavar='N'),
    Option('mem', ('memory',), values.megabytes,
           'an int in MB, or a string with a unit b, k/kb, m/mb, g/gb, t/tb '
           '(any case, 1024-based, decimals allowed): 4096, "4GB", "1.5g"',
           None, 'memory in MB (per node or for the whole job: see the system)',
           group='resources', metavar='N'),
    Option('time', ('walltime',), values.hms_time,
           'D-HH:MM:SS, HH:MM:SS, MM:SS or SS (an int is seconds)',
           None, 'wall-clock time limit, normalised to HH:MM:SS', group='resources',
           metavar='HH:MM:SS'),
    Option('features', ('constraint',), values.str_list(values.feature),
           'a comma-separated string or a list of strings (letters, digits, _ . + -)',
           None, 'node features the job needs (all of them)', group='resources',
           metavar='F1,F2'),
    Option('threads', (), values.positive_int, 'a positive int (or numeric string)', None,
           'local mode only: cores of the local job queue, if this job starts it',
           kind='job', group='resources', metavar='N'),
    # scheduling
    Option('partition', ('queue',), values.word, _WORD_ACCEPTS, None,
           'partition to use (synonym: queue, the older word for it)', metavar='NAME'),
    Option('account', (), values.word, _WORD_ACCEPTS, None, 'account to charge',
           metavar='NAME'),
    Option('qos', (), values.word, _WORD_ACCEPTS, None,
           'quality of service', metavar='NAME'),
    Option('name', ('jobname',), values.plain_name, 'letters, digits and . _ + -', None,
           'job name shown by the batch system (defaults to the job file name)',
           metavar='NAME'),
    Option('export', (), values.export,
           'ALL, NONE, or a comma-separated list of NAME or NAME=value (no spaces)',
           None, 'environment variables passed to the job', metavar='VARS'),
    Option('begin', (), values.begin,
           'YYYY-MM-DD[THH:MM[:SS]], HH:MM[:SS], now, now+N[seconds|minutes|hours|days|weeks] '
           'or a datetime',
           None, 'earliest start time', metavar='TIME'),
    Option('requeue', (), values.flag, 'a bool', False,
           'requeue the job after preemption or a node failure (commands rerun from the '
           'start, a function with a checkpoint method resumes from it)', kind='job'),
    Option('grace', (), values.positive_int, 'a positive int (seconds)', 90,
           'with requeue: seconds before the time limit at which a function job is asked '
           'to checkpoint', kind='job', metavar='SECONDS'),
    Option('max_requeues', (), values.count, 'an int of at least 0', 3,
           'with requeue: how many times the job may be requeued', kind='job', metavar='N'),
    Option('depends', ('depend', 'dependency', 'dependencies'), values.depends,
           'a job id (str or int), a job object (with .id), or a list of them',
           None, 'jobs that must complete successfully first', kind='job'),
    # files
    Option('outfile', ('stdout',), values.path, 'a path (str or os.PathLike)', None,
           'file for standard output (default <name>.<suffix>.out)', group='files',
           metavar='PATH'),
    Option('errfile', ('stderr',), values.path, 'a path (str or os.PathLike)', None,
           'file for standard error (default <name>.<suffix>.err)', group='files',
           metavar='PATH'),
    Option('dir', ('path', 'runpath'), values.abspath,
           'a path (str or os.PathLike), made absolute', None,
           'directory the job runs in (default: the current one)', kind='job',
           group='files'),
    Option('filedir', ('scriptpath',), values.abspath,
           'a path (str or os.PathLike), made absolute', None,
           'directory for the job scripts and outputs (default: dir)', kind='job',
           group='files'),
    Option('suffix', (), values.plain_name, 'letters, digits and . _ + -', DEFAULT_SUFFIX,
           'suffix of the job files: <name>.<suffix>.out', kind='job', group='files'),
    # environment
    Option('modules', (), values.str_list(values.module_name),
           'a comma-separated string or a list of module names', None,
           'environment modules loaded (module load) before the job runs', kind='job',
           group='environment'),
    Option('imports', (), values.str_list(values.import_statement),
           'a comma-separated string or a list of module names or import statements '
           '("numpy", "import numpy as np", "from os import path")', None,
           'imports a function job needs before its function is unpickled', kind='job',
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
    None (not set). Raises :class:`~cluster.run.errors.OptionError` for an unknown keyword,
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
# header lines: checked here, written by the batch system (cluster.batch)
# ---------------------------------------------------------------------------------------

def _system(qtype: Optional[str]) -> Type[BatchSystem]:
    """The class of ``qtype`` (detected when None); OptionError for an unknown one."""
    return batch.system_class(batch.detect() if qtype is None else qtype)


def option_to_string(option: str, value: Any = None, qtype: Optional[str] = None) -> str:
    """One header directive for ``option``, e.g. ``#SBATCH --mem=4096``.

    ``value=None`` uses the option's default. An option the batch system lacks, a
    'job'-kind option, local mode, or no value at all give a debug log line and ''.
    ``qtype=None`` detects the batch system. The line is the system's
    (:meth:`~cluster.batch.BatchSystem.directive`).

    >>> option_to_string('memory', '4GB', 'torque')
    '#PBS -l mem=4096MB'
    """
    name = canonical(option)
    spec = OPTIONS[name]
    system = _system(qtype)
    value = spec.default if value is None else check_arguments({option: value})[name]
    if not system.prefix:
        logger.debug('%s mode has no script header; option %r not rendered', system.name, name)
        return ''
    if value is None:
        logger.debug('option %r has no value and no default; not rendered', name)
        return ''
    lines = system.directive(name, value) if spec.directive else None
    if lines is None:
        logger.debug('%s has no directive for option %r (%s option); not rendered',
                     system.name, name, spec.kind)
        return ''
    if not lines:
        logger.debug('option %r with value %r writes nothing for %s', name, value, system.name)
    return '\n'.join(lines)


def options_to_string(option_dict: Mapping[str, Any], qtype: Optional[str] = None) -> str:
    """All header directives for ``option_dict``, one per line, in the system's order.

    The dict is checked with :func:`check_arguments` first; None values and 'job'-kind
    options are skipped; a system may combine options (Torque writes nodes, cores and
    features as one line ``#PBS -l nodes=N:ppn=C:feature1:feature2``). Local mode gives ''.

    >>> options_to_string({'walltime': 90, 'partition': 'short'}, 'slurm')
    '#SBATCH --time=00:01:30\\n#SBATCH --partition=short'
    """
    options = check_arguments(option_dict)
    system = _system(qtype)
    directives = {k: v for k, v in options.items() if OPTIONS[k].directive}
    return '\n'.join(system.directive_lines(directives))

"""Job records: one JSON file per submitted job, so that a later process can find it again.

The records live in :func:`state_dir`: ``$CLUSTER_STATE_DIR`` when set, else
platformdirs' user state directory (``~/.local/state/cluster/jobs`` on Linux). The
directory is made 0700; a record is written 0600 through the package's one atomic write
(``cluster.script.files.write_atomic``), one file per job, so writers in several
processes never lose each other's records. A record is read only when it is a regular
file of this user, opened without following symlinks, in a directory closed to others,
and holds the schema below: anything else is a :class:`RecordError`. Records are JSON
and never unpickled; a function job's payload stays its pickle file.

Schema (``"schema": "cluster.job-record"``, ``"version": 1``), every key always present:

``id``
    the batch system's job id (a string)
``system``
    the batch system's name (``qtype``)
``name``
    the job's name (its files' name)
``kind``
    ``"command"``, ``"function"``, or ``"array"`` (an Executor's job array, version 2)
``command``
    the command line of a command job (None for a function job: its payload
    is ``files.pickle_in``; None for an array: each task's calls are in its own payload)
``files``
    the job's files on this machine: ``directory``, ``name``, ``suffix``,
    ``qtype``, ``script`` (:class:`~cluster.script.JobFiles` fields)
``target``
    the same files as the batch system sees them (the remote job directory)
``outfile``
    where the job's standard output goes, as the batch system sees it
``errfile``
    the same for standard error
``options``
    the job's options (JSON values; others as their ``str``)
``dir``
    the directory the job runs in; ``modules`` and ``imports`` its lists
``profile``
    the profile the job was made with (None: none named)
``remote``
    None here, else ``{"address": "user@host:port", "url": "ssh://...",
    "profile": ...}``: the endpoint, never a credential
``host``
    the host the job was submitted from; ``pid`` and ``pid_started`` its
    process (a local job ends with it)
``submitted``
    submit time, epoch seconds
``links``
    ``{"resubmit_of": key or None, "resubmitted_as": [keys]}``
``attempts``
    how many times the job ran (1; requeues add to it)
``array``
    None, or for an array (kind ``"array"``) the map from task indices to calls, in
    ranges (:mod:`cluster.job.callmap`). The calls are numbered in the order the
    Executor was given them (``map``'s positions). A map split over several arrays
    (the system's array limit) has one record per array. ``links["tasks"]`` of an array
    resubmitted with ``--failed`` names the old task index of each new one
``key``
    the record's own key (below), added when it is written

A record is named by its *key*, ``<id>-<8 hex>``: the hex tells apart jobs with the same
id on other systems, endpoints, or (local jobs) processes. :func:`update` sets fields and
:func:`modify` changes a record in place, both under a lock every process shares.

A new key is added to ``FIELDS`` (its JSON types), to :func:`new` (its value in a new
record) and to ``ADDED`` (the version that brought it, and its value in older records),
and ``VERSION`` goes up by one: older records then read with that value, and a reader
refuses a record of a version newer than its own. A record is written with the lowest
version that holds it (:data:`KIND_VERSION`): version 2 brought arrays, so a job's record
is still version 1 and a version-1 reader refuses only array records, saying why.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import socket
import stat
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import platformdirs
import psutil

from .. import config_file
from ..run.errors import ClusterError
from ..script.files import write_atomic
from . import callmap

logger = logging.getLogger(__name__)

ENV_VAR = 'CLUSTER_STATE_DIR'
SCHEMA = 'cluster.job-record'
VERSION = 2
#: the record version that brought each kind of record (version 1 for a kind not named here)
KIND_VERSION = {'array': 2}
#: the keys of a version-1 record and the JSON types each may hold
FIELDS: Dict[str, tuple] = {
    'schema': (str,), 'version': (int,), 'id': (str,), 'system': (str,), 'name': (str,),
    'kind': (str,), 'command': (str, type(None)), 'files': (dict,), 'target': (dict,),
    'outfile': (str,), 'errfile': (str,), 'options': (dict,), 'profile': (str, type(None)),
    'remote': (dict, type(None)), 'host': (str,), 'pid': (int,),
    'pid_started': (int, float, type(None)), 'submitted': (int, float), 'links': (dict,),
    'attempts': (int,), 'array': (dict, type(None)), 'dir': (str,), 'modules': (list,),
    'imports': (list,),
}
#: keys added after version 1: key -> (the version that added it, its value in older records)
ADDED: Dict[str, Tuple[int, Any]] = {}
_KEY = re.compile(r'^[A-Za-z0-9_.+\[\]-]{1,200}$')
MAX_BYTES = 4 << 20


class RecordError(ClusterError):
    """A record that cannot be trusted or read (corrupt, foreign, unknown version), or
    none for an id."""


def state_dir(create: bool = False) -> str:
    """The directory of the records (made 0700 with ``create``); refused when it is not
    this user's or others may write to it."""
    path = os.environ.get(ENV_VAR) or os.path.join(platformdirs.user_state_dir('cluster'),
                                                    'jobs')
    path = os.path.abspath(os.path.expanduser(path))
    if create:
        os.makedirs(path, mode=0o700, exist_ok=True)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return path
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RecordError(f'the record directory {path} must be yours and closed to others '
                          f'(owner {info.st_uid}, mode {stat.filemode(info.st_mode)}); '
                          f'set {ENV_VAR} to a directory of your own')
    return path


def key_of(job_id: str, system: str, endpoint: Optional[str], pid: Optional[int]) -> str:
    """The record key of a job: its id and a tag of where it runs (and, for a job of a
    process's own queue, which process)."""
    where = f'{system}|{endpoint or socket.gethostname()}|{pid or ""}'
    key = f'{job_id}-{hashlib.sha1(where.encode()).hexdigest()[:8]}'
    if not _KEY.match(key):
        raise RecordError(f'job id {job_id!r} cannot name a record')
    return key


def path_of(key: str) -> str:
    if not _KEY.match(key):
        raise RecordError(f'{key!r} is not a record key')
    return os.path.join(state_dir(), key + '.json')


def new(**fields: Any) -> Dict[str, Any]:
    """A version-1 record: ``fields`` over the defaults (see the module's table)."""
    record: Dict[str, Any] = {
        'schema': SCHEMA, 'version': KIND_VERSION.get(fields.get('kind'), 1), 'command': None, 'profile': None,
        'remote': None, 'host': socket.gethostname(), 'pid': os.getpid(),
        'pid_started': None, 'submitted': time.time(), 'options': {},
        'links': {'resubmit_of': None, 'resubmitted_as': []}, 'attempts': 1, 'array': None,
        'dir': os.getcwd(), 'modules': [], 'imports': []}
    record.update(fields)
    record['options'] = {k: _jsonable(v) for k, v in record['options'].items()}
    check(record, 'new record')
    return record


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def check(record: Any, where: str) -> Dict[str, Any]:
    """``record`` when it is a record of this schema; else RecordError naming ``where``."""
    if not isinstance(record, dict) or record.get('schema') != SCHEMA:
        raise RecordError(f'{where} is not a cluster job record')
    version = record.get('version')
    if not isinstance(version, int) or version > VERSION or version < 1:
        raise RecordError(f'{where} has record version {version!r}; this cluster reads '
                          f'versions 1 to {VERSION} (a newer cluster wrote it?)')
    for name, (since, default) in ADDED.items():
        if version < since:
            record.setdefault(name, default)
    for name, types in FIELDS.items():
        if name not in record:
            raise RecordError(f'{where} is corrupt: it lacks {name!r}')
        if not isinstance(record[name], types) or isinstance(record[name], bool) \
                and bool not in types:
            raise RecordError(f'{where} is corrupt: {name!r} is {record[name]!r}')
    if record['kind'] not in ('command', 'function', 'array') \
            or version < KIND_VERSION.get(record['kind'], 1):
        raise RecordError(f'{where} is corrupt: kind {record["kind"]!r}')
    if record['kind'] == 'array':
        problem = callmap.problem(record['array'])
        if problem:
            raise RecordError(f'{where} is corrupt: its array map ({problem})')
    return record


call_map = callmap.call_map


def calls_of(array: Dict[str, Any], index: int) -> range:
    """The call numbers task ``index`` of a recorded array runs (RecordError for a task
    it has not)."""
    found = callmap.calls_of(array, index)
    if found is None:
        raise RecordError(f'the array has no task {index} (tasks 0 to {array["tasks"] - 1})')
    return found


def write(record: Dict[str, Any]) -> str:
    """Write (or replace) a record, atomically, 0600; returns its key."""
    check(record, 'a record to write')
    key = record.get('key') or key_of(record['id'], record['system'],
                                      (record['remote'] or {}).get('address'),
                                      record['pid'] if record['system'] == _LOCAL else None)
    record['key'] = key
    state_dir(create=True)
    write_atomic(path_of(key), json.dumps(record, indent=1, sort_keys=True) + '\n')
    _prune_once()
    return key


_LOCAL = 'local'  # the in-process job queue: its ids are this process's own


def load(key: str) -> Dict[str, Any]:
    """The record ``key``, read through the checks above (RecordError else)."""
    path = path_of(key)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RecordError(f'no record {key} in {state_dir()}') from None
    except OSError as exc:
        raise RecordError(f'refusing the record {path}: {exc.strerror} '
                          '(a symbolic link?)') from None
    with os.fdopen(fd, 'rb') as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() \
                or info.st_mode & 0o077:
            raise RecordError(f'refusing the record {path}: it must be a regular file of '
                              f'uid {os.getuid()} readable by nobody else (owner '
                              f'{info.st_uid}, mode {stat.filemode(info.st_mode)})')
        data = handle.read(MAX_BYTES + 1)
    try:
        record = json.loads(data.decode('utf-8')) if len(data) <= MAX_BYTES else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError(f'the record {path} is corrupt: {exc}') from None
    record = check(record, f'the record {path}')
    record['key'] = key
    return record


def keys() -> List[str]:
    """Every record key, newest file first."""
    folder = state_dir()
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith('.json')
                   and _KEY.match(e.name[:-5])]
    except FileNotFoundError:
        return []
    entries.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime_ns, reverse=True)
    return [e.name[:-5] for e in entries]


def find(job_id: str) -> List[Dict[str, Any]]:
    """The records of jobs with id ``job_id`` (or of that key), newest submission first.
    A record that fails its checks raises RecordError."""
    job_id = str(job_id)
    if _KEY.match(job_id) and os.path.lexists(path_of(job_id)):
        return [load(job_id)]
    found = [load(k) for k in keys() if k.rsplit('-', 1)[0] == job_id]
    return sorted(found, key=lambda r: r['submitted'], reverse=True)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    folder = state_dir(create=True)
    fd = os.open(os.path.join(folder, '.lock'), os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update(key: str, **fields: Any) -> Dict[str, Any]:
    """Set fields of record ``key`` (see :func:`modify`): ``update(key, attempts=2)``."""
    return modify(key, lambda record: record.update(fields))


def modify(key: str, change: Callable[[Dict[str, Any]], Any]) -> Dict[str, Any]:
    """Read record ``key``, let ``change`` alter it in place, check and write it, all under
    a lock every process shares, so concurrent changes are never lost; returns the new
    record. ``modify(key, lambda r: r.update(attempts=r['attempts'] + 1))``."""
    with _locked():
        record = load(key)
        change(record)
        check(record, f'record {key} after a change')
        write(record)
    return record


def cleaned(job: Any) -> None:
    """A job's files were cleaned: its record goes with them."""
    key = getattr(job, 'record_key', None)
    if key:
        remove(key)


def remove(key: str) -> None:
    """Delete record ``key`` (nothing when it is gone)."""
    try:
        os.unlink(path_of(key))
    except FileNotFoundError:
        pass


def prune(days: Optional[float] = None) -> List[str]:
    """Delete records untouched for ``days`` (default ``[records] retention_days`` of
    ``~/.cluster``, 30); returns their keys."""
    if days is None:
        days = float(config_file.get('records', 'retention_days') or 30)
    limit = time.time() - days * 86400
    gone = []
    for key in keys():
        try:
            if os.lstat(path_of(key)).st_mtime < limit:
                remove(key)
                gone.append(key)
        except FileNotFoundError:
            continue
    return gone


_PRUNED: List[bool] = []


def _prune_once() -> None:
    """Prune once per process, at its first record."""
    if not _PRUNED:
        _PRUNED.append(True)
        try:
            prune()
        except (ClusterError, OSError) as exc:
            logger.warning('could not prune old job records: %s', exc)


def submitted(job: Any, job_id: str, array: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """Record a job just submitted (a :class:`~cluster.Job`; with ``array``, the
    :func:`call_map` of an Executor's array); its key, or None when the record could not
    be written (logged: the job runs on all the same)."""
    try:
        kind = 'array' if array else 'function' if job.is_function else 'command'
        record = new(id=str(job_id), system=job.system.name, name=job.name, kind=kind,
                     array=array,
                     command=None if kind != 'command' else job.command + ''.join(
                         ' ' + shlex.quote(str(a)) for a in job.args or ()),
                     files=_files(job.files), target=_files(job.target),
                     outfile=job.outfile, errfile=job.errfile, options=job.options,
                     profile=job.profile, remote=_endpoint(job.store),
                     pid_started=psutil.Process().create_time(), dir=job.runpath,
                     modules=[str(m) for m in job.modules],
                     imports=[str(m) for m in job.imports],
                     links=dict(getattr(job, 'links', None) or
                                {'resubmit_of': None, 'resubmitted_as': []}))
        job.record_key = write(record)
        return job.record_key
    except (ClusterError, OSError) as exc:
        logger.error('job %s (%s) runs, but its record could not be written: %s',
                     job.name, job_id, exc)
        return None


def _files(files: Any) -> Dict[str, Any]:
    return {'directory': files.directory, 'name': files.name, 'suffix': files.suffix,
            'qtype': files.qtype, 'script': files.script}


def _endpoint(store: Any) -> Optional[Dict[str, Any]]:
    """The remote endpoint of a job's store, without credentials (None here)."""
    endpoint = getattr(store, 'endpoint', None)
    if endpoint is None:
        return None
    return {'address': endpoint.address, 'profile': endpoint.profile,
            'url': f'ssh://{endpoint.user}@{endpoint.host}:{endpoint.port}'
                   f'{endpoint.workdir or ""}'}

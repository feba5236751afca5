"""Jobs of earlier processes: :func:`attach` to one by id, :func:`jobs` to list them.

Both read the records of :mod:`cluster.job.records`. An attached :class:`~cluster.Job`
has the files, options and id of the job as it was submitted: ``wait``, ``get``,
``get_stdout``, ``get_stderr``, ``get_exitcode``, ``cancel`` and ``clean`` work as in the
process that submitted it, and a function job's value (or its exception, with the remote
traceback) comes back from its result file. A job the scheduler has forgotten is settled
from its exit-code file and the accounting (the :class:`~cluster.queue.Watcher`'s rule).
A local job runs in the job queue of the process that submitted it and ends with it:
attaching to one that had not finished when that process ended says so.
"""
from __future__ import annotations

import datetime
import logging
import os
import socket
import time
from concurrent.futures import Future
from typing import Any, Dict, List, Optional, Tuple, Union

import psutil

from .. import config_file, queue
from ..batch import JobInfo, State
from ..run.errors import ClusterError, JobError, ProfileError
from ..run.remote import resolve
from ..script import runner
from ..script.files import JobFiles, write_atomic
from . import records
from .core import Job
from .recorded_array import RecordedArray, resubmit_array, split_task_id

logger = logging.getLogger(__name__)

#: the system whose jobs live in the job queue of the submitting process
IN_PROCESS = 'local'


def _payload_in_files(*_: Any, **__: Any) -> Any:
    """Stands for the call of an attached function job: it is in the job's payload file."""
    raise JobError('an attached function job runs the call in its payload file')


def attach(job_id: Union[str, int], qtype: Optional[str] = None,
           profile: Optional[str] = None, remote: Any = None) -> Union[Job, RecordedArray]:
    """The :class:`~cluster.Job` of a job submitted by any earlier process, by its id (or
    its record key). ``qtype``, ``profile`` and ``remote`` choose among records of the
    same id on several systems (else the newest is taken) and say how to reach a remote
    one (by default the profile or address of its record). An Executor's array (its id)
    or one of its tasks (an Executor future's ``.job.id``, ``123_4`` on Slurm) gives a
    :class:`~cluster.job.recorded_array.RecordedArray`. Raises
    :class:`~cluster.job.records.RecordError` when there is no (trustworthy) record, and
    :class:`~cluster.JobError` for a local job whose process is gone before it ended.
    """
    record, index = _record_and_task(job_id, qtype, profile, remote)
    if _cleaned(record):
        records.remove(record['key'])
        raise records.RecordError(f'job {job_id} ({record["name"]}) was cleaned: its files '
                                  f'in {record["files"]["directory"]} are gone, and its '
                                  'record with them')
    job = from_record(record, profile, remote, index)
    problem = _gone(record, job)
    if problem:
        raise JobError(problem)
    return job


def _record_and_task(job_id: Union[str, int], qtype: Optional[str], profile: Optional[str],
                     remote: Any) -> Tuple[Dict[str, Any], Optional[int]]:
    """The record of ``job_id``, and the task index when the id names an array's task."""
    task = split_task_id(str(job_id))
    if task is not None and not records.find(str(job_id)):
        record = attach_record(task[0], qtype, profile, remote)
        if record['kind'] != 'array':
            raise records.RecordError(f'{job_id}: job {task[0]} ({record["name"]}) is not '
                                      'an array')
        return record, task[1]
    return attach_record(job_id, qtype, profile, remote), None


def _matches(record: Dict[str, Any], qtype: Optional[str], profile: Optional[str],
             remote: Any) -> bool:
    if qtype and record['system'] != qtype:
        return False
    endpoint = (record['remote'] or {}).get('address')
    wanted = resolve(profile, remote) if (profile or remote) else None
    if wanted is not None:
        return endpoint == wanted.address
    return not profile or record['profile'] == profile


def from_record(record: Dict[str, Any], profile: Optional[str] = None,
                remote: Any = None, index: Optional[int] = None) -> Any:
    """A :class:`~cluster.Job` standing for the recorded job (nothing is submitted); for
    an array, a :class:`RecordedArray` of all its tasks, or of task ``index``."""
    if record['kind'] == 'array':
        return RecordedArray(_job_of(record, profile, remote), record, index)
    job = _job_of(record, profile, remote)
    if record['system'] != IN_PROCESS or _own(record):
        job._watcher.track(record['id'], job.files, job.store, State.UNKNOWN)  # not asked yet
    else:
        code = queue.read_exitcode(job.files)
        job._info = queue.outcome(record['id'], None, code) if code is not None else None
    return job


def _job_of(record: Dict[str, Any], profile: Optional[str], remote: Any) -> Job:
    """The Job of a record's files, options and id, not tracked yet."""
    where = record['remote']
    if where:  # else the profile played its part when the job was made: no need for it now
        remote = remote or where['url']
        profile = profile or _existing(where.get('profile'))
    command = {'function': _payload_in_files, 'array': 'true'}.get(record['kind'],
                                                                    record['command'])
    job = Job(command, name=record['name'], qtype=record['system'],
              profile=profile if where else None, remote=remote if where else None)
    job.options, job.profile = dict(record['options']), record['profile']
    files, target = JobFiles(**record['files']), JobFiles(**record['target'])
    for key, default in (('outfile', target.outfile), ('errfile', target.errfile)):
        if record[key] != default:
            job.options[key] = record[key]
    job._claimed, job._written, job.name = (files, target), True, record['name']
    job._runpath, job.modules, job.imports = record['dir'], record['modules'], record['imports']
    submitted: Future = Future()
    submitted.set_result(record['id'])
    job._submitting, job._id = submitted, record['id']
    job.record_key, job.record = record['key'], record
    return job


def _existing(profile: Optional[str]) -> Optional[str]:
    """``profile`` when ``~/.cluster`` still has it (else the record's address alone)."""
    if not profile:
        return None
    try:
        config_file.get_profile(profile)
    except ProfileError:
        return None
    return profile


def _alive(record: Dict[str, Any]) -> Optional[bool]:
    """Whether the submitting process still runs (None: on another host, cannot tell)."""
    if record['host'] != socket.gethostname():
        return None
    try:
        started = psutil.Process(record['pid']).create_time()
    except psutil.Error:
        return False
    return record['pid_started'] is None or abs(started - record['pid_started']) < 1


def _own(record: Dict[str, Any]) -> bool:
    return record['pid'] == os.getpid() and _alive(record) is True


def _gone(record: Dict[str, Any], job: Job) -> Optional[str]:
    """Why a local job cannot be followed from here (None: it can)."""
    if record['system'] != IN_PROCESS or _own(record) or job._info is not None:
        return None
    alive = _alive(record)
    where = f'process {record["pid"]} on {record["host"]}'
    if alive:
        return (f'local job {record["id"]} ({record["name"]}) runs in the job queue of '
                f'{where}, which is still running: only that process can follow it '
                f'(its exit code will be in {job.files.exitcode})')
    return (f'local job {record["id"]} ({record["name"]}) ran in {where}, which '
            + ('has ended' if alive is False else 'cannot be checked from here')
            + ' before the job finished: local jobs end with the process that runs them'
            f' (what it wrote is in {job.outfile} and {job.errfile})')


def jobs(state: Optional[Union[str, State]] = None,
         since: Any = None,
         profile: Optional[str] = None) -> List[Job]:
    """Recorded jobs, newest first, with their current states (one status command per
    batch system). ``state`` keeps jobs in that state (``'running'``...), ``since`` the
    ones submitted after a time (epoch seconds, a datetime, or a timedelta before now),
    ``profile`` those made with that profile. A record that fails its checks is skipped
    with a warning; the records of cleaned jobs and old ones are removed."""
    records.prune()
    after = _epoch(since)
    found: List[Job] = []
    for key in records.keys():
        try:
            record = records.load(key)
        except records.RecordError as exc:
            logger.warning('skipped: %s', exc)
            continue
        if (after is not None and record['submitted'] < after) or (
                profile and record['profile'] != profile):
            continue
        if _cleaned(record):
            records.remove(key)
            continue
        try:
            job = from_record(record)
        except ClusterError as exc:  # e.g. its profile's settings are refused now
            logger.warning('skipped the record of job %s: %s', record['id'], exc)
            continue
        problem = _gone(record, job)
        if problem:
            job._info = JobInfo(record['id'], State.FAILED, reason=problem)
        found.append(job)
    _refresh_once(found)
    found.sort(key=lambda j: j.record['submitted'], reverse=True)
    wanted = State(state) if isinstance(state, str) else state
    return [j for j in found if wanted is None or j._info is not None and j._info.state is wanted]


def _epoch(since: Any) -> Optional[float]:
    if since is None or isinstance(since, (int, float)):
        return since
    if isinstance(since, datetime.timedelta):
        return time.time() - since.total_seconds()
    return since.timestamp()


def _cleaned(record: Dict[str, Any]) -> bool:
    """The job's files are gone from this machine: cleaned (a user's own script aside)."""
    files = JobFiles(**record['files'])
    return not files.script and not any(os.path.lexists(p) for p in files.all())


def _refresh_once(found: List[Job]) -> None:
    """One status command per batch system for every open job, then their infos."""
    watchers = {id(j._watcher): j._watcher for j in found
                if isinstance(j, RecordedArray) or j._info is None}
    unreachable: Dict[int, str] = {}
    for key, watcher in watchers.items():
        try:  # one cluster out of reach hides none of the others
            watcher.refresh(force=True)
        except ClusterError as exc:
            unreachable[key] = f'its status could not be asked: {exc}'
    for job in found:
        if isinstance(job, RecordedArray):  # it reads its tasks
            continue
        if job._info is None and id(job._watcher) in unreachable:
            job._info = JobInfo(job.id, State.UNKNOWN, reason=unreachable[id(job._watcher)])
        elif job._info is None:
            job._info = job._watcher.known(job.id)


def resubmit(job_id: Union[str, int], qtype: Optional[str] = None,
             profile: Optional[str] = None, remote: Any = None, failed: bool = False) -> Any:
    """Submit a recorded job again from what it left: the same command, or the same
    payload file of a function job, with the same options, in the same directory. The new
    job has names of its own (its outputs never overwrite the old job's, so an ``outfile``
    or ``errfile`` the old job was given is not reused), a new id, and a record linked to
    the old one (``links``). An Executor's array runs again as a new array of its tasks'
    payloads, with ``failed`` only the tasks that did not complete or had a call raise
    (:func:`~cluster.job.recorded_array.resubmit_array`). Returns the new, submitted Job
    (or array)."""
    old = attach_record(job_id, qtype, profile, remote)
    where = old['remote']
    place = dict(qtype=None if where else old['system'],
                 profile=profile or (_existing(where.get('profile')) if where else old['profile']),
                 remote=remote or (where['url'] if where else None))
    if old['kind'] == 'array':
        return resubmit_array(from_record(old, profile, remote), failed, place)
    if failed:
        raise JobError(f'job {old["id"]} ({old["name"]}) is not an array: --failed '
                       'resubmits the failed tasks of an Executor\'s array')
    options = {k: v for k, v in old['options'].items() if k not in ('outfile', 'errfile')}
    function = old['kind'] == 'function'
    payload = JobFiles(**old['files']).pickle_in
    if function and not os.path.exists(payload):
        raise JobError(f'job {old["id"]} ({old["name"]}) cannot run again: its payload '
                       f'{payload} is gone (was it cleaned?)')
    job = Job(_payload_in_files if function else old['command'], name=old['name'],
              path=old['files']['directory'], dir=old['dir'], modules=old['modules'],
              imports=old['imports'], **place, **options)
    job.write()
    if function:  # the old call, byte for byte, through the checked open
        with runner.open_private(payload) as handle:
            write_atomic(job.files.pickle_in, handle)
        job.store.push(job.files, [job.target.pickle_in])
    job.links = {'resubmit_of': old['key'], 'resubmitted_as': []}
    job.submit()
    job.id  # waits for the id, so the new record is written
    if getattr(job, 'record_key', None):
        records.modify(old['key'], lambda r: r['links']['resubmitted_as'].append(job.record_key))
    logger.info('job %s resubmitted as %s', old['id'], job.id)
    return job


def attach_record(job_id: Union[str, int], qtype: Optional[str] = None,
                  profile: Optional[str] = None, remote: Any = None) -> Dict[str, Any]:
    """The newest record of ``job_id`` matching ``qtype``, ``profile`` and ``remote``."""
    found = [r for r in records.find(str(job_id)) if _matches(r, qtype, profile, remote)]
    if not found:
        raise records.RecordError(
            f'no record of a job {job_id}' + (f' on {qtype or profile or remote}'
                                              if qtype or profile or remote else '')
            + f' in {records.state_dir()} (records are kept '
            f'{config_file.get("records", "retention_days")} days; a cleaned job has none)')
    if len(found) > 1:
        logger.info('%d records of job %s; taking the newest (%s)', len(found), job_id,
                    found[0]['key'])
    return found[0]

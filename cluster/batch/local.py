"""Local mode: jobs run on this machine through the dependency-aware :mod:`cluster.jobqueue`.

Command jobs run their submission script with bash in a worker; function jobs run the
same payload and shell in the worker's own interpreter, writing the same files a node
would (stdout, stderr, exit code, tagged result).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Dict, List, Mapping, Optional, Sequence

from .. import config_file, jobqueue
from ..run.errors import JobError, SubmissionError
from ..script import function
from ..script.files import JobFiles, write_atomic
from .base import BatchSystem, JobInfo

logger = logging.getLogger(__name__)


def _job_queue(create: bool = True, threads: Optional[int] = None):
    """The local JobQueue; ``threads`` (a job's option) sizes it when it starts here,
    else ``[jobqueue] cores`` of the config file, else every core of the machine."""
    running = jobqueue.JQUEUE
    if running is None and not create:
        return None
    if (running is not None and not running.closed and running._pid == os.getpid()
            and (not threads or running.cores == threads)):
        return running  # the config file only matters when the queue starts
    cores = threads or config_file.get('jobqueue', 'cores')
    job_queue = jobqueue.get_jobqueue(int(cores) if cores not in (None, '', 'None') else None)
    if threads and job_queue.cores != threads:
        logger.warning('threads=%d not applied: the local job queue is running already, with '
                       '%d cores', threads, job_queue.cores)
    return job_queue


def execute(files: JobFiles, is_function: bool, outfile: str, errfile: str) -> int:
    """Run one job inside a worker; raise JobError on a non-zero exit so dependents fail."""
    if is_function:
        code = _run_function(files, outfile, errfile)
        write_atomic(files.exitcode, f'{code}\n')
    else:
        with open(outfile, 'ab') as out, open(errfile, 'ab') as err:
            code = subprocess.call(['bash', files.submission], stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL)
    if code != 0:
        raise JobError(f'job {files.name} exited with code {code}')
    return code


def _run_function(files: JobFiles, outfile: str, errfile: str) -> int:
    """Run the payload with fd 1 and 2 sent to the job's files, then restore everything."""
    saved_path, saved_cwd = list(sys.path), os.getcwd()
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    with open(outfile, 'ab') as out, open(errfile, 'ab') as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            return function.run_in_process(files)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            sys.path[:] = saved_path
            os.chdir(saved_cwd)


def seconds(limit: Optional[str]) -> Optional[int]:
    """A normalised ``HH:MM:SS`` time limit in seconds (None: no limit)."""
    if not limit:
        return None
    hours, minutes, secs = (int(part) for part in str(limit).split(':'))
    return hours * 3600 + minutes * 60 + secs or None


class Local(BatchSystem):
    """This machine, through the local JobQueue."""

    name = 'local'
    remote = False
    #: what each keyword does in local mode (there is no script header)
    notes = {
        'cores': 'cores reserved in the local job queue', 'nodes': 'ignored: one machine',
        'mem': 'not enforced', 'time': 'killed at the limit (timeout)', 'features': 'ignored',
        'threads': 'cores of the local job queue when this job starts it (a running queue '
                   'keeps its size)',
        'partition': 'ignored', 'account': 'ignored', 'qos': 'ignored', 'name': 'the job name',
        'export': 'the whole environment is passed', 'begin': 'ignored',
        'depends': 'waits for those jobs in the local queue',
        'outfile': 'file for standard output', 'errfile': 'file for standard error',
        'dir': 'directory the job runs in', 'filedir': 'directory for the job files',
        'suffix': 'suffix of the job files', 'modules': 'loaded if the module command exists',
        'imports': 'imported before the function is unpickled',
    }

    def submit(self, files: JobFiles, dependencies: Sequence[str] = (),
               options: Optional[Mapping] = None) -> str:
        options = options or {}
        try:
            deps = [int(d) for d in dependencies]
        except ValueError:
            raise JobError(f'local job ids are numbers; cannot depend on {list(dependencies)}') \
                from None
        is_function = os.path.exists(files.pickle_in)
        job_queue = _job_queue(threads=options.get('threads'))
        cores = options.get('cores', 1)
        if isinstance(cores, int) and not isinstance(cores, bool) and cores > job_queue.cores:
            raise SubmissionError(['local', files.submission], None, message=(
                f'job {files.name} asks for {cores} cores; the local job queue has '
                f'{job_queue.cores} (set [jobqueue] cores in ~/.cluster for more)'))
        job_id = job_queue.add(execute, args=(files, is_function,
                                          options.get('outfile', files.outfile),
                                          options.get('errfile', files.errfile)),
                           dependencies=deps, cores=cores, name=files.name,
                           time_limit=seconds(options.get('time')))
        return str(job_id)

    def slots(self) -> Optional[int]:
        """The cores of the local job queue."""
        return _job_queue().cores

    def submit_call(self, function, args, dependencies, options, name) -> Optional[str]:
        """Queue ``function(*args)`` in the JobQueue (its ``cores`` and ``time``
        honoured), after the listed jobs."""
        job_queue = _job_queue(threads=options.get('threads'))
        return str(job_queue.add(function, args=tuple(args),
                                 dependencies=[int(d) for d in dependencies],
                                 cores=options.get('cores', 1), name=name,
                                 time_limit=seconds(options.get('time'))))

    def submit_forked(self, function, arguments, options, names, on_done) -> List[str]:
        """Queue ``function(*args)`` per tuple of ``arguments``, each a forked job of the
        JobQueue (``JobQueue.add_forked``: run from memory), its ``cores`` and ``time``
        honoured; their ids."""
        job_queue = _job_queue(threads=options.get('threads'))
        ids = job_queue.add_forked(function, arguments, cores=options.get('cores', 1),
                                   names=names, time_limit=seconds(options.get('time')),
                                   on_done=on_done)
        return [str(i) for i in ids]

    def job_queue(self):
        """The local JobQueue (started when it is not running)."""
        return _job_queue()

    def statuses(self, job_ids: Optional[Sequence[str]] = None,
                 user: Optional[str] = None) -> Dict[str, JobInfo]:
        job_queue = _job_queue(create=False)
        if job_queue is None:
            return {}
        jobs = dict(job_queue.jobs)
        wanted = jobs if job_ids is None else {int(i): jobs[int(i)] for i in job_ids
                                                if int(i) in jobs}
        return {str(i): JobInfo(str(i), job.state, exitcode=job.exitcode, name=job.name,
                                node='localhost', start=job.start, end=job.end,
                                reason=job.reason)
                for i, job in wanted.items()}

    def cancel(self, job_ids: Sequence[str]) -> None:
        job_queue = _job_queue(create=False)
        if job_queue is not None:
            for job_id in job_ids:
                job_queue.cancel(int(job_id))

    def block(self, job_ids: Sequence[str], timeout: float) -> bool:
        job_queue = _job_queue(create=False)
        if job_queue is None:
            return super().block(job_ids, timeout)
        return job_queue.wait_any([int(i) for i in job_ids], timeout)


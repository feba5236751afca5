"""The local JobQueue: a dependency DAG, cores-aware backfill, persistent worker processes.

>>> q = JobQueue(cores=2)
>>> first = q.add(pow, args=(2, 10))
>>> q.get(q.add(abs, args=(-3,), dependencies=[first]))
3

This package is the public face (:mod:`cluster.jobqueue.core` holds :class:`JobQueue` and
:class:`Job`); the work is done by three modules:

* :mod:`cluster.jobqueue.dispatch`: one scheduler thread (:func:`run_dispatcher`) owns every
  state change; it wakes on new jobs, worker answers and worker deaths, without polling.
* :mod:`cluster.jobqueue.scheduling`: which job starts when. The waiting line is in id
  order; smaller jobs backfill while the head waits for cores, at most ``cores`` times per
  head job and, once run times are learned, only when they end before the head could
  start (EASY backfill); dependents of a failed job are cancelled (``dependency N failed``).
* :mod:`cluster.jobqueue.worker`: up to ``cores`` persistent worker processes (fresh
  interpreters, each in its own session, started with the first job that needs one or
  by :meth:`JobQueue.warm`; a k-core job occupies one worker and k cores), payloads
  pickled once in the caller's thread (plain pickle, dill for ``__main__``).
* :mod:`cluster.jobqueue.forked`: jobs added with ``fork=True`` (or
  :meth:`JobQueue.add_forked`) run in forked children of this process, from memory;
  only their values are pickled; ``on_done`` callbacks tell when a job is final.

Behaviour callers see:

* A job that raises is FAILED (exit code 1); :meth:`JobQueue.get` re-raises the worker's
  exception with its traceback text in ``exc.remote_traceback``, chained from a
  :class:`~cluster.run.errors.JobError` whose message holds the same text
  (``raise exc from JobError(...)``), so the traceback is shown once.
* Bad input is refused at :meth:`JobQueue.add` with a JobError: cores outside 1..cores,
  an unknown dependency id (the new job's own id included, so no cycle can form). A
  function or arguments that cannot be pickled give a FAILED job whose ``get`` says why;
  an unpicklable return value fails that job alone. Results and exceptions of the user's
  ``__main__`` classes come back as those classes.
* A job with a ``time_limit`` that runs longer is killed with its worker and ends TIMEOUT
  (reason ``time limit of N s reached``), as a batch system's time limit does.
* A worker killed by a signal fails its job (exit code ``-signal``, reason ``killed by
  signal 9 (SIGKILL)``); its process group is killed and a new worker takes its place.
* At exit (atexit) or :meth:`JobQueue.shutdown`, every worker's process tree is killed
  with psutil. A worker whose parent dies kills its own process group.
"""
from __future__ import annotations

import os
import threading
from typing import Optional

from .core import Job, JobQueue, job_runner, run_dispatcher

__all__ = ['JobQueue', 'Job', 'run_dispatcher', 'job_runner', 'get_jobqueue', 'JQUEUE']

#: the module-level queue, created by :func:`get_jobqueue` on first use (never at import)
JQUEUE: Optional['JobQueue'] = None
_JQUEUE_LOCK = threading.Lock()

def get_jobqueue(cores: Optional[int] = None) -> 'JobQueue':
    """The shared module-level queue (``JQUEUE``), created on first call.

    ``cores`` only matters on creation; a running queue is returned as it is.
    """
    global JQUEUE
    with _JQUEUE_LOCK:
        if JQUEUE is None or JQUEUE.closed or JQUEUE._pid != os.getpid():  # or forked
            JQUEUE = JobQueue(cores)
        return JQUEUE

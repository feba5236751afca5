"""The user's side: :class:`Job` and the helpers ``submit``, ``make_job``, ``make_job_file``,
``submit_file``, ``clean`` and ``clean_dir``, and the ``cluster`` command.

* :mod:`cluster.job.core`: :class:`Job`: write, submit, wait, get, clean.
* :mod:`cluster.job.api`: the module-level helpers around it.
* :mod:`cluster.job.executor`: :class:`Executor` over job arrays; its futures
  (:mod:`cluster.job.futures`), submission (:mod:`cluster.job.arrays`), collector
  (:mod:`cluster.job.collect`) and progress bar (:mod:`cluster.job.progress`).
* :mod:`cluster.job.records`: the record every submitted job leaves;
  :mod:`cluster.job.attach`: :func:`attach` and :func:`jobs`, which read them.
* :mod:`cluster.job.cli`: the ``cluster`` command; :mod:`cluster.job.demo` its demo pipeline.
"""
from __future__ import annotations

from .attach import attach, jobs
from .api import clean, clean_dir, make_job, make_job_file, submit, submit_file
from .core import Command, Job
from .executor import Executor
from .futures import JobFuture

__all__ = ['Job', 'attach', 'jobs', 'Command', 'submit', 'make_job', 'make_job_file',
           'submit_file', 'clean', 'clean_dir', 'Executor', 'JobFuture']

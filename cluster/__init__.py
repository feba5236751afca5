"""cluster: write a pipeline once; run it on a laptop, a Slurm/Torque login node, or remotely.

>>> import cluster
>>> cluster.Job('echo hi', qtype='local').submit().get()
(0, 'hi\\n', '')

The modules the seed's users reach through the package (``cluster.config_file``,
``cluster.jobqueue``, ``cluster.logme``, ``cluster.options``, ``cluster.run``,
``cluster.queue``, ``cluster.job``, ``cluster.script``) are attributes after ``import cluster``; importing
them does no work (no file written, no process or thread started, nothing detected).
"""
from . import config_file, job, jobqueue, logme, options, queue, run, script  # noqa: F401
from .run.errors import (ClusterError, CommandError, ConfigError, JobError, OptionError,
                         ProfileError, SubmissionError, SubmissionUnknown)
from .job.records import RecordError
from .job import (Executor, Job, JobFuture, attach, clean, clean_dir, jobs, make_job,
                  make_job_file, submit, submit_file)
from .options import check_arguments, option_help
from .queue import Queue, check_queue, get_cluster_environment, wait
from .script.runner import Resume

__version__ = '0.1.0'
__all__ = ['Job', 'Executor', 'JobFuture', 'attach', 'jobs', 'submit', 'make_job',
           'make_job_file', 'submit_file', 'clean', 'clean_dir',
           'Queue', 'wait', 'get_cluster_environment', 'check_queue', 'check_arguments',
           'option_help', 'Resume', 'ClusterError', 'CommandError', 'ConfigError', 'JobError',
           'OptionError', 'ProfileError', 'RecordError', 'SubmissionError', 'SubmissionUnknown']

"""Python client of the Xenon middleware: jobs and files on local and remote machines.

Start (or reuse) the xenon-grpc server with :func:`init`, then open a
:class:`Scheduler` or :class:`FileSystem` with one of Xenon's adaptors::

    import xenon_backend as xb

    xb.init()
    with xb.Scheduler.create('local') as scheduler:
        job = scheduler.submit_batch_job(xb.JobDescription(executable='/bin/hostname'))
        print(scheduler.wait_until_done(job).exit_code)

Needs java and the xenon-grpc jar, and the generated stubs: ``python -m
xenon_backend.build`` makes the latter two.
"""
from __future__ import annotations

from . import exceptions
from .credentials import (CertificateCredential, CredentialMap, DefaultCredential,
                          KeytabCredential, PasswordCredential)
from .exceptions import XenonException, make_exception
from .filesystem import FileSystem
from .messages import (CopyMode, CopyOperation, CopyStatus, FileSystemAdaptorDescription, Job,
                       JobDescription, JobStatus, Path, PathAttributes, PosixFilePermission,
                       PropertyDescription, PropertyType, QueueStatus,
                       SchedulerAdaptorDescription)
from .scheduler import CommandResult, InteractiveOutputStream, Scheduler
from .server import Server, default_server, init, shutdown

__all__ = [
    'init', 'shutdown', 'default_server', 'Server',
    'FileSystem', 'Path', 'PathAttributes', 'PosixFilePermission', 'CopyMode', 'CopyOperation',
    'CopyStatus', 'FileSystemAdaptorDescription',
    'Scheduler', 'Job', 'JobDescription', 'JobStatus', 'QueueStatus', 'InteractiveOutputStream',
    'CommandResult',
    'SchedulerAdaptorDescription', 'PropertyDescription', 'PropertyType',
    'PasswordCredential', 'CertificateCredential', 'DefaultCredential', 'KeytabCredential',
    'CredentialMap',
    'exceptions', 'XenonException', 'make_exception',
]

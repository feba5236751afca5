"""``Scheduler``: run jobs through a Xenon scheduler adaptor (local, ssh, at, slurm, torque, ...).

>>> with Scheduler.create('local') as scheduler:        # doctest: +SKIP
...     job = scheduler.submit_batch_job(JobDescription(executable='/bin/true'))
...     scheduler.wait_until_done(job).exit_code
0

Behaviour of xenon-grpc 3.0.1 to keep in mind: the default queue is ``single`` (one
job at a time; use ``multi`` or ``unlimited`` for more), a job is forgotten once a
final status has been returned, the ``local`` adaptor accepts no properties and polls
once a second, and every closed ``ssh`` scheduler leaks one SSH connection.
"""
from __future__ import annotations

import logging
import threading
from typing import (Any, Dict, Iterable, Iterator, List, NamedTuple, Optional,
                    Sequence, Tuple)

import grpc

from . import _stubs
from ._handle import Handle, create_remote, pick_credential
from .credentials import Credential
from .exceptions import DeadlineExceededException, XenonException
from .messages import (InteractiveOutput, Job, JobDescription, JobStatus, QueueStatus,
                       SchedulerAdaptorDescription)
from .filesystem import FileSystem
from .server import Server

logger = logging.getLogger(__name__)

WAIT_SLICE_MS = 60_000  # a wait without limit asks the server in slices of this
_DRAIN_STDIN = '"$0" "$@"; status=$?; cat > /dev/null; exit $status'


class CommandResult(NamedTuple):
    """Exit code and complete output of a command run with :meth:`Scheduler.run_command`."""

    exit_code: int
    stdout: bytes
    stderr: bytes


class InteractiveOutputStream:
    """The output of an interactive job: iterate it (or call ``next()``) for chunks.

    Each item has ``stdout`` and ``stderr`` bytes; either may be empty. Iteration ends
    when the job has ended and its output is drained. ``cancel()`` stops the call.
    """

    def __init__(self, responses: Any, server: Server, method: str) -> None:
        self._responses = responses
        self._server = server
        self._method = method

    def __iter__(self) -> 'InteractiveOutputStream':
        return self

    def __next__(self) -> InteractiveOutput:
        try:
            reply = next(self._responses)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise self._server.translate(self._method, error) from None
        return InteractiveOutput(Job(reply.job.id), reply.stdout, reply.stderr)

    def next(self) -> InteractiveOutput:
        """The next chunk (blocks until the job writes something)."""
        return self.__next__()

    def cancel(self) -> None:
        """Stop receiving output (the job itself is not cancelled)."""
        self._responses.cancel()


def _first_response(responses: Any, timeout: Optional[float]) -> Any:
    """The first response of a stream, its RpcError, or None when ``timeout`` s pass first.

    A stream has no deadline of its own here (an interactive job may run for days),
    but its start is bounded by the scheduler's ``timeout``.
    """
    result: Dict[str, Any] = {}
    arrived = threading.Event()

    def take_first() -> None:
        try:
            result['value'] = next(responses)
        except grpc.RpcError as error:
            result['value'] = error
        except StopIteration:
            result['value'] = XenonException('Scheduler.submit_interactive_job', None,
                                             'the server ended the call without a job id')
        finally:
            arrived.set()

    threading.Thread(target=take_first, name='xenon-interactive-start', daemon=True).start()
    if not arrived.wait(timeout):
        return None
    return result['value']


class Scheduler(Handle):
    """A scheduler open in the xenon-grpc server."""

    _service = 'scheduler'
    _field = 'scheduler'

    # -- adaptors and the schedulers the server holds ---------------------------------------
    @staticmethod
    def get_adaptor_names(server: Optional[Server] = None) -> List[str]:
        """Names of the scheduler adaptors."""
        return list(Scheduler._server(server).call(
            'scheduler', 'getAdaptorNames', _stubs.pb2().Empty(),
            method='Scheduler.get_adaptor_names').name)

    @staticmethod
    def get_adaptor_descriptions(server: Optional[Server] = None
                                 ) -> List[SchedulerAdaptorDescription]:
        """Descriptions of all scheduler adaptors."""
        reply = Scheduler._server(server).call(
            'scheduler', 'getAdaptorDescriptions', _stubs.pb2().Empty(),
            method='Scheduler.get_adaptor_descriptions')
        return [SchedulerAdaptorDescription.from_proto(d) for d in reply.descriptions]

    @staticmethod
    def get_adaptor_description(name: str, server: Optional[Server] = None
                                ) -> SchedulerAdaptorDescription:
        """Description of the adaptor ``name``."""
        reply = Scheduler._server(server).call(
            'scheduler', 'getAdaptorDescription', _stubs.pb2().AdaptorName(name=name),
            method='Scheduler.get_adaptor_description')
        return SchedulerAdaptorDescription.from_proto(reply)

    @classmethod
    def create(cls, adaptor: str, location: str = '', properties: Optional[Dict[str, Any]] = None,
               credential: Optional[Credential] = None, *, password_credential: Any = None,
               certificate_credential: Any = None, default_credential: Any = None,
               keytab_credential: Any = None, credential_map: Any = None,
               server: Optional[Server] = None, timeout: Optional[float] = None) -> 'Scheduler':
        """Open a scheduler with ``adaptor`` at ``location`` (e.g. ``'ssh'``, ``'host:2222'``).

        ``properties`` are ``xenon.adaptors.schedulers.<adaptor>.*`` settings (the
        ``local`` adaptor takes none). ``timeout`` (seconds) bounds every call made
        through this object, except the waits, which have their own.
        """
        chosen = pick_credential(credential, password_credential=password_credential,
                                 certificate_credential=certificate_credential,
                                 default_credential=default_credential,
                                 keytab_credential=keytab_credential, credential_map=credential_map)
        server = cls._server(server)
        handle = create_remote(server, 'scheduler', adaptor, location, properties, chosen, timeout)
        logger.debug('opened %s scheduler %s', adaptor, handle)
        return cls(handle, server, timeout)

    @classmethod
    def local_scheduler(cls, server: Optional[Server] = None) -> 'Scheduler':
        """The server's ``local`` scheduler with default settings."""
        server = cls._server(server)
        reply = server.call('scheduler', 'localScheduler', _stubs.pb2().Empty(),
                            method='Scheduler.local_scheduler')
        return cls(reply.id, server)

    @classmethod
    def list_schedulers(cls, server: Optional[Server] = None) -> List['Scheduler']:
        """All schedulers open in the server."""
        server = cls._server(server)
        reply = server.call('scheduler', 'listSchedulers', _stubs.pb2().Empty(),
                            method='Scheduler.list_schedulers')
        return [cls(s.id, server) for s in reply.schedulers]

    # -- requests ---------------------------------------------------------------------------
    def _job_request(self, job: Job) -> Any:
        return _stubs.pb2().JobRequest(scheduler=self._proto(), job=job.to_proto())

    def _wait_request(self, job: Job, timeout: int) -> Any:
        return _stubs.pb2().WaitRequest(scheduler=self._proto(), job=job.to_proto(),
                                        timeout=timeout)

    # -- jobs -------------------------------------------------------------------------------
    def submit_batch_job(self, description: JobDescription) -> Job:
        """Submit a job; returns its handle at once."""
        request = _stubs.pb2().SubmitBatchJobRequest(scheduler=self._proto(),
                                                     description=description.to_proto())
        return Job(self._call('submitBatchJob', request, 'submit_batch_job').id)

    def submit_interactive_job(self, description: JobDescription,
                               stdin_stream: Iterable[bytes] = ()
                               ) -> Tuple[Job, InteractiveOutputStream]:
        """Start a job whose stdin is fed from ``stdin_stream`` and whose output streams back.

        ``stdin_stream`` is consumed in a gRPC thread, so it may block (e.g. on a
        queue); its end closes the job's stdin. Returns ``(job, output_stream)``.
        """
        pb2 = _stubs.pb2()
        scheduler = self._proto()

        def requests() -> Iterator[Any]:
            yield pb2.SubmitInteractiveJobRequest(scheduler=scheduler,
                                                  description=description.to_proto())
            for chunk in stdin_stream:
                yield pb2.SubmitInteractiveJobRequest(stdin=bytes(chunk))

        method = 'Scheduler.submit_interactive_job'
        responses = self.server._stub('scheduler').submitInteractiveJob(requests())
        output = InteractiveOutputStream(responses, self.server, method)
        first = _first_response(responses, self.timeout)
        if isinstance(first, grpc.RpcError):
            raise self.server.translate(method, first)
        if isinstance(first, XenonException):
            raise first
        if first is None:
            responses.cancel()
            raise DeadlineExceededException(method, None, (
                f'the job did not start within the timeout of {self.timeout} s'))
        return Job(first.job.id), output

    def run_command(self, executable: str, arguments: Sequence[str] = (), stdin: bytes = b'',
                    working_directory: str = '', timeout: int = 0) -> CommandResult:
        """Run one command as an interactive job and collect its output and exit code.

        The building block of a remote command runner: over ``ssh`` this is one
        command on the remote host, without a batch system, output streamed back.
        ``timeout`` (milliseconds, 0: none) bounds the wait for the exit code after
        the output has ended. The command runs under ``/bin/sh`` (a missing program
        gives exit code 127), which reads stdin to its end before exiting. A failed
        start is never retried here: the command may have run.

        >>> scheduler.run_command('/bin/echo', ['hi'])        # doctest: +SKIP
        CommandResult(exit_code=0, stdout=b'hi\\n', stderr=b'')
        """
        # The command runs under /bin/sh, which drains stdin before exiting: the server
        # writes stdin (at least an empty chunk) after the start, and a command that has
        # already ended would make that write fail ("channel already closed").
        description = JobDescription(
            executable='/bin/sh', arguments=['-c', _DRAIN_STDIN, str(executable),
                                             *[str(a) for a in arguments]],
            working_directory=str(working_directory or ''))
        job, output = self.submit_interactive_job(description, [stdin] if stdin else [])
        out, err = [], []
        for chunk in output:
            out.append(chunk.stdout)
            err.append(chunk.stderr)
        status = self.wait_until_done(job, timeout)
        if not status.done:
            raise DeadlineExceededException('Scheduler.run_command', None,
                                            f'{executable} did not end within {timeout} ms')
        if status.error is not None:
            raise status.error
        return CommandResult(status.exit_code, b''.join(out), b''.join(err))

    def get_queue_names(self) -> List[str]:
        """Names of the queues (local: ``single``, ``multi``, ``unlimited``)."""
        return list(self._call('getQueueNames', method='get_queue_names').name)

    def get_default_queue_name(self) -> str:
        """The queue a job goes to without ``queue_name`` (local and ssh: ``single``)."""
        return self._call('getDefaultQueueName', method='get_default_queue_name').name

    def get_jobs(self, *queues: str) -> List[Job]:
        """Jobs in these queues (all queues when none are named)."""
        request = _stubs.pb2().SchedulerAndQueues(scheduler=self._proto(), queues=list(queues))
        return [Job(j.id) for j in self._call('getJobs', request, 'get_jobs').jobs]

    def get_job_status(self, job: Job) -> JobStatus:
        """Status of one job (a job is forgotten after its final status has been returned)."""
        return JobStatus.from_proto(self._call('getJobStatus', self._job_request(job),
                                               'get_job_status'))

    def get_job_statuses(self, jobs: Iterable[Job]) -> List[JobStatus]:
        """Statuses of many jobs in one call; an unknown job has ``error_type`` NOT_FOUND."""
        request = _stubs.pb2().GetJobStatusesRequest(scheduler=self._proto(),
                                                     jobs=[j.to_proto() for j in jobs])
        reply = self._call('getJobStatuses', request, 'get_job_statuses')
        return [JobStatus.from_proto(s) for s in reply.statuses]

    def get_queue_status(self, queue: str) -> QueueStatus:
        """Status of one queue."""
        request = _stubs.pb2().GetQueueStatusRequest(scheduler=self._proto(), queue=queue)
        return QueueStatus.from_proto(self._call('getQueueStatus', request, 'get_queue_status'))

    def get_queue_statuses(self, *queues: str) -> List[QueueStatus]:
        """Statuses of these queues (all when none are named)."""
        request = _stubs.pb2().SchedulerAndQueues(scheduler=self._proto(), queues=list(queues))
        reply = self._call('getQueueStatuses', request, 'get_queue_statuses')
        return [QueueStatus.from_proto(s) for s in reply.statuses]

    def _wait(self, rpc: str, method: str, job: Job, timeout: int, running: bool) -> JobStatus:
        while True:
            status = JobStatus.from_proto(self._call(
                rpc, self._wait_request(job, timeout or WAIT_SLICE_MS), method, timeout=None))
            if timeout or status.done or (running and status.running):
                return status

    def wait_until_done(self, job: Job, timeout: int = 0) -> JobStatus:
        """Wait for ``job`` to end, at most ``timeout`` milliseconds (0: no limit).

        The returned final status is the last one the server gives for this job.
        """
        return self._wait('waitUntilDone', 'wait_until_done', job, timeout, running=False)

    def wait_until_running(self, job: Job, timeout: int = 0) -> JobStatus:
        """Wait for ``job`` to start (or end), at most ``timeout`` milliseconds (0: no limit)."""
        return self._wait('waitUntilRunning', 'wait_until_running', job, timeout, running=True)

    def cancel_job(self, job: Job) -> JobStatus:
        """Cancel ``job``; returns its status right after (over ssh the process may live on)."""
        return JobStatus.from_proto(self._call('cancelJob', self._job_request(job), 'cancel_job'))

    def get_default_runtime(self) -> int:
        """Default maximum run time of a job in minutes (0: none)."""
        return self._call('getDefaultRuntime', method='get_default_runtime').value

    def get_file_system(self) -> 'FileSystem':
        """The filesystem this scheduler uses (for ssh: an sftp filesystem on the same host)."""
        return FileSystem(self._call('getFileSystem', method='get_file_system').id, self.server,
                          self.timeout)


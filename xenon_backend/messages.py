"""Plain Python values for the messages of the Xenon API: paths, statuses, descriptions.

Each class converts from its gRPC message with ``from_proto`` and, when it is sent to
the server, to it with ``to_proto``. The enum values equal those of ``xenon.proto``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Dict, FrozenSet, List, Optional, Union

from . import _stubs
from . import exceptions as exc


class Path(PurePosixPath):
    """A path on a Xenon filesystem: a :class:`pathlib.PurePosixPath` that knows if it is hidden.

    >>> Path('/data/.cache').is_hidden()
    True
    """

    def is_hidden(self) -> bool:
        """True when the last component starts with a dot."""
        return self.name.startswith('.')

    def to_proto(self) -> Any:
        return _stubs.pb2().Path(path=str(self), separator='/')

    @classmethod
    def from_proto(cls, message: Any) -> 'Path':
        return cls(message.path)


PathLike = Union[str, PurePosixPath]


def to_path_proto(path: PathLike) -> Any:
    """The ``xenon.Path`` message of a string or path."""
    return _stubs.pb2().Path(path=str(path), separator='/')


class PosixFilePermission(enum.IntEnum):
    """One POSIX permission bit (values as in ``xenon.proto``)."""

    NONE = 0
    OWNER_READ = 1
    OWNER_WRITE = 2
    OWNER_EXECUTE = 3
    GROUP_READ = 4
    GROUP_WRITE = 5
    GROUP_EXECUTE = 6
    OTHERS_READ = 7
    OTHERS_WRITE = 8
    OTHERS_EXECUTE = 9

    @classmethod
    def from_mode(cls, mode: int) -> FrozenSet['PosixFilePermission']:
        """The permissions of an octal mode, e.g. ``from_mode(0o640)``."""
        return frozenset(member for member in cls if member and mode & (1 << (9 - member)))

    @staticmethod
    def to_mode(permissions: Any) -> int:
        """The octal mode of a collection of permissions."""
        return sum(1 << (9 - int(member)) for member in permissions if member)


class CopyMode(enum.IntEnum):
    """What a copy does when the target exists: fail, overwrite or skip it."""

    CREATE = 0
    REPLACE = 1
    IGNORE = 2


class PropertyType(enum.IntEnum):
    """Type of an adaptor property."""

    STRING = 0
    BOOLEAN = 1
    INTEGER = 2
    DOUBLE = 3
    LONG = 4
    SIZE = 5
    NATURAL = 6


@dataclass(frozen=True)
class PropertyDescription:
    """A property an adaptor supports: name, meaning, default and type."""

    name: str
    description: str
    default_value: str
    type: PropertyType

    @classmethod
    def from_proto(cls, message: Any) -> 'PropertyDescription':
        return cls(message.name, message.description, message.default_value,
                   PropertyType(message.type))


@dataclass(frozen=True)
class SchedulerAdaptorDescription:
    """What a scheduler adaptor offers."""

    name: str
    description: str
    supported_locations: List[str]
    supported_properties: List[PropertyDescription]
    is_embedded: bool
    supports_interactive: bool
    supports_batch: bool
    uses_file_system: bool
    supported_credentials: List[str]

    @classmethod
    def from_proto(cls, message: Any) -> 'SchedulerAdaptorDescription':
        return cls(message.name, message.description, list(message.supported_locations),
                   [PropertyDescription.from_proto(p) for p in message.supported_properties],
                   message.is_embedded, message.supports_interactive, message.supports_batch,
                   message.uses_file_system, list(message.supported_credentials))


@dataclass(frozen=True)
class FileSystemAdaptorDescription:
    """What a filesystem adaptor offers."""

    name: str
    description: str
    supported_locations: List[str]
    supported_properties: List[PropertyDescription]
    supports_third_party_copy: bool
    can_create_symboliclinks: bool
    can_read_symboliclinks: bool
    is_connectionless: bool
    supported_credentials: List[str]
    supports_reading_posix_permissions: bool
    supports_setting_posix_permissions: bool
    supports_rename: bool
    can_append: bool
    needs_size_beforehand: bool

    @classmethod
    def from_proto(cls, message: Any) -> 'FileSystemAdaptorDescription':
        return cls(message.name, message.description, list(message.supported_locations),
                   [PropertyDescription.from_proto(p) for p in message.supported_properties],
                   message.supports_third_party_copy, message.can_create_symboliclinks,
                   message.can_read_symboliclinks, message.is_connectionless,
                   list(message.supported_credentials),
                   message.supports_reading_posix_permissions,
                   message.supports_setting_posix_permissions, message.supports_rename,
                   message.can_append, message.needs_size_beforehand)


@dataclass(frozen=True)
class PathAttributes:
    """Attributes of a path; times are milliseconds since the epoch."""

    path: Path
    creation_time: int
    group: str
    is_directory: bool
    is_executable: bool
    is_hidden: bool
    is_other: bool
    is_readable: bool
    is_regular: bool
    is_symbolic_link: bool
    is_writable: bool
    last_access_time: int
    last_modified_time: int
    owner: str
    permissions: FrozenSet[PosixFilePermission]
    size: int

    @classmethod
    def from_proto(cls, message: Any) -> 'PathAttributes':
        return cls(Path(message.path.path), message.creation_time, message.group,
                   message.is_directory, message.is_executable, message.is_hidden,
                   message.is_other, message.is_readable, message.is_regular,
                   message.is_symbolic_link, message.is_writable, message.last_access_time,
                   message.last_modified_time, message.owner,
                   frozenset(PosixFilePermission(p) for p in message.permissions), message.size)


@dataclass(frozen=True)
class CopyOperation:
    """Handle of an asynchronous copy."""

    id: str

    def to_proto(self) -> Any:
        return _stubs.pb2().CopyOperation(id=self.id)


@dataclass(frozen=True)
class CopyStatus:
    """State of a copy; ``error_type`` says which exception ``error`` would be."""

    class ErrorType(enum.IntEnum):
        NONE = 0
        NOT_FOUND = 1
        CANCELLED = 2
        ALREADY_EXISTS = 3
        NOT_CONNECTED = 4
        XENON = 5

    copy_operation: CopyOperation
    bytes_copied: int
    bytes_to_copy: int
    done: bool
    running: bool
    state: str
    error_message: str
    error_type: 'CopyStatus.ErrorType'

    @classmethod
    def from_proto(cls, message: Any) -> 'CopyStatus':
        return cls(CopyOperation(message.copy_operation.id), message.bytes_copied,
                   message.bytes_to_copy, message.done, message.running, message.state,
                   message.error_message, cls.ErrorType(message.error_type))

    @property
    def error(self) -> Optional[Exception]:
        """The copy's failure as an exception (None when it did not fail)."""
        classes = {self.ErrorType.NOT_FOUND: exc.NoSuchPathException,
                   self.ErrorType.CANCELLED: exc.CopyCancelledException,
                   self.ErrorType.ALREADY_EXISTS: exc.PathAlreadyExistsException,
                   self.ErrorType.NOT_CONNECTED: exc.NotConnectedException,
                   self.ErrorType.XENON: exc.XenonException}
        cls = classes.get(self.error_type)
        return exc.exception_from_message('copy', self.error_message, cls) if cls else None


@dataclass(frozen=True)
class Job:
    """Handle of a submitted job."""

    id: str

    def to_proto(self) -> Any:
        return _stubs.pb2().Job(id=self.id)


@dataclass
class JobDescription:
    """What to run and how; 0 or empty means "the scheduler's default".

    ``max_runtime`` is in minutes, ``max_memory`` and ``temp_space`` in MB,
    ``start_time`` in the scheduler's own syntax (e.g. ``now`` or ``12:30``).
    Over ``ssh``, ``environment`` only arrives if the sshd accepts it (``AcceptEnv``).

    >>> JobDescription(executable='/bin/echo', arguments=['hi'], stdout='out.txt')  # doctest: +ELLIPSIS
    JobDescription(executable='/bin/echo', ...)
    """

    executable: str = ''
    arguments: List[str] = field(default_factory=list)
    working_directory: str = ''
    environment: Dict[str, str] = field(default_factory=dict)
    queue_name: str = ''
    max_runtime: int = 0
    stderr: str = ''
    stdin: str = ''
    stdout: str = ''
    name: str = ''
    max_memory: int = 0
    scheduler_arguments: List[str] = field(default_factory=list)
    tasks: int = 1
    cores_per_task: int = 1
    tasks_per_node: int = 0
    start_per_task: bool = False
    start_time: str = ''
    temp_space: int = 0

    def to_proto(self) -> Any:
        return _stubs.pb2().JobDescription(
            executable=str(self.executable), arguments=[str(a) for a in self.arguments],
            working_directory=str(self.working_directory or ''),
            environment={str(k): str(v) for k, v in self.environment.items()},
            queue_name=self.queue_name, max_runtime=self.max_runtime, stderr=str(self.stderr or ''),
            stdin=str(self.stdin or ''), stdout=str(self.stdout or ''), name=self.name,
            max_memory=self.max_memory, scheduler_arguments=list(self.scheduler_arguments),
            tasks=self.tasks, cores_per_task=self.cores_per_task,
            tasks_per_node=self.tasks_per_node, start_per_task=self.start_per_task,
            start_time=self.start_time, temp_space=self.temp_space)


@dataclass(frozen=True)
class JobStatus:
    """State of a job; ``exit_code`` is meaningful once ``done`` is true.

    xenon-grpc 3.0.1 forgets a job once a final status has been returned for it: a
    later question about that job raises :class:`NoSuchJobException`.
    """

    class ErrorType(enum.IntEnum):
        NONE = 0
        NOT_FOUND = 1
        CANCELLED = 2
        NOT_CONNECTED = 3
        XENON = 4
        IO = 5
        OTHER = 6

    job: Job
    state: str
    running: bool
    done: bool
    scheduler_specific_information: Dict[str, str]
    exit_code: int
    error_message: str
    error_type: 'JobStatus.ErrorType'
    name: str

    @classmethod
    def from_proto(cls, message: Any) -> 'JobStatus':
        return cls(Job(message.job.id), message.state, message.running, message.done,
                   dict(message.scheduler_specific_information), message.exit_code,
                   message.error_message, cls.ErrorType(message.error_type), message.name)

    @property
    def error(self) -> Optional[Exception]:
        """The job's failure to run as an exception (None when there is none)."""
        classes = {self.ErrorType.NOT_FOUND: exc.NoSuchJobException,
                   self.ErrorType.CANCELLED: exc.JobCanceledException,
                   self.ErrorType.NOT_CONNECTED: exc.NotConnectedException}
        if self.error_type == self.ErrorType.NONE:
            return None
        return exc.exception_from_message('job', self.error_message,
                                          classes.get(self.error_type, exc.XenonException))


@dataclass(frozen=True)
class QueueStatus:
    """State of a queue."""

    class ErrorType(enum.IntEnum):
        NONE = 0
        NOT_FOUND = 1
        NOT_CONNECTED = 2
        XENON = 3
        IO = 4
        OTHER = 5

    name: str
    scheduler_specific_information: Dict[str, str]
    error_message: str
    error_type: 'QueueStatus.ErrorType'

    @classmethod
    def from_proto(cls, message: Any) -> 'QueueStatus':
        return cls(message.name, dict(message.scheduler_specific_information),
                   message.error_message, cls.ErrorType(message.error_type))


@dataclass(frozen=True)
class InteractiveOutput:
    """One chunk of an interactive job's output: bytes of stdout and of stderr (either may be empty)."""

    job: Job
    stdout: bytes
    stderr: bytes

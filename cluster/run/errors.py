"""Exceptions raised by ``cluster``; every one of them is a :class:`ClusterError`."""
from __future__ import annotations

from typing import Optional, Sequence, Union


class ClusterError(Exception):
    """Base class of every error this package raises on purpose."""


class OptionError(ClusterError, ValueError):
    """An unknown keyword, or a keyword with a malformed value."""


class ConfigError(ClusterError):
    """The config file (``~/.cluster``) cannot be read or holds bad data."""


class ProfileError(ConfigError, KeyError):
    """A profile that does not exist was asked for."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ''


class CommandError(ClusterError):
    """A shell command failed; carries the command, exit code and output."""

    def __init__(self, command: Union[str, Sequence[str]], code: Optional[int],
                 stdout: str = '', stderr: str = '', message: str = '') -> None:
        self.command = command if isinstance(command, str) else ' '.join(map(str, command))
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        detail = message or (stderr.strip() or stdout.strip())
        super().__init__(
            f'command {self.command!r} failed with exit code {code}'
            + (f': {detail}' if detail else ''))


class SubmissionError(CommandError):
    """The batch system refused a job; the message is the scheduler's."""


class JobError(ClusterError):
    """A job failed, or its result cannot be had."""


class SubmissionUnknown(ClusterError):
    """A submit command failed in a way that leaves open whether the job was taken, and
    the lookup by the job's unique name could not decide. The job may exist: check for
    :attr:`name` before submitting it again."""

    def __init__(self, name: str, detail: str, hint: str = '') -> None:
        self.name = name
        self.detail = detail
        super().__init__(f'cannot tell whether job {name} was submitted: {detail}'
                         + (f'; check with {hint}' if hint else '')
                         + ' before submitting it again')


class StorageError(ClusterError, OSError):
    """A job file cannot be written (a full disk, no permission); the message names it."""

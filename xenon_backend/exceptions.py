"""Exceptions of ``xenon_backend``: one class per Xenon exception, all :class:`XenonException`.

xenon-grpc reports a failed call as a gRPC status whose details start with the
Java class of the exception, e.g.
``nl.esciencecenter.xenon.filesystems.NoSuchPathException: file adaptor: Path does not
exist: /x``. :func:`make_exception` turns such an error into the Python class of the
same name, carrying the method, the gRPC status code and the message.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional, Type

import grpc


class XenonException(Exception):
    """Base class of every error raised by ``xenon_backend``.

    ``method`` is the API method that failed, ``code`` the gRPC status code (or None),
    ``message`` Xenon's own message without the Java class name.
    """

    def __init__(self, method: str, code: Optional[grpc.StatusCode], message: str) -> None:
        self.method = method
        self.code = code
        self.message = message
        code_name = code.name if isinstance(code, grpc.StatusCode) else code
        super().__init__(f'{type(self).__name__} in {method}'
                         + (f' ({code_name})' if code_name else '') + f': {message}')


class UnknownRpcException(XenonException):
    """A gRPC error that names no known Xenon exception."""


class XenonServerError(XenonException):
    """The xenon-grpc server is missing, has died, refuses us, or cannot be started."""


class DeadlineExceededException(XenonException):
    """A call did not finish within its ``timeout``."""


class XenonRuntimeException(XenonException):
    """An unexpected error inside Xenon."""


class NotConnectedException(XenonException):
    """The connection of a scheduler or filesystem is closed or lost."""


class UnknownAdaptorException(XenonException):
    """No adaptor of that name exists."""


class InvalidCredentialException(XenonException):
    """The credential is of the wrong kind, or the remote side refused it (bad key or password)."""


class InvalidLocationException(XenonException):
    """The location string does not fit the adaptor."""


class InvalidPropertyException(XenonException):
    """A property has a value the adaptor cannot use."""


class UnknownPropertyException(XenonException):
    """A property the adaptor does not support (the ``local`` scheduler supports none)."""


class PropertyTypeException(XenonException):
    """A property value of the wrong type."""


class UnsupportedOperationException(XenonException):
    """The adaptor cannot do this."""


class AttributeNotSupportedException(XenonException):
    """A path attribute this filesystem cannot report."""


class CopyCancelledException(XenonException):
    """A copy operation was cancelled."""


class DirectoryNotEmptyException(XenonException):
    """A non-recursive delete of a directory that still has entries."""


class FileSystemClosedException(XenonException):
    """An operation on a filesystem that has been closed."""


class InvalidOptionsException(XenonException):
    """Options that cannot be combined."""


class InvalidPathException(XenonException):
    """A path that is not valid here (e.g. a symbolic link that is no link)."""


class InvalidResumeTargetException(XenonException):
    """A resumed copy whose target does not match its source."""


class NoSuchCopyException(XenonException):
    """A copy operation the server does not know (finished and forgotten, or never started)."""


class NoSuchPathException(XenonException):
    """A path that does not exist."""


class PathAlreadyExistsException(XenonException):
    """The target of a create, copy or rename exists already."""


class IncompleteJobDescriptionException(XenonException):
    """A job description that lacks a required field."""


class InvalidJobDescriptionException(XenonException):
    """A job description with a field value the scheduler rejects."""


class UnsupportedJobDescriptionException(XenonException):
    """A job description asking for something this scheduler does not support."""


class JobCanceledException(XenonException):
    """The job was cancelled."""


class NoSuchJobException(XenonException):
    """A job the scheduler does not know (note: xenon-grpc forgets a job after its final status)."""


class NoSuchQueueException(XenonException):
    """A queue name the scheduler does not have."""


EXCEPTIONS: Dict[str, Type[XenonException]] = {
    name: value for name, value in dict(globals()).items()
    if isinstance(value, type) and issubclass(value, XenonException)}

_JAVA_CLASS = re.compile(r'^\s*(?:[a-z_][\w]*\.)+([A-Z]\w*(?:Exception|Error))\s*:\s*(.*)$', re.S)
_BY_CODE = {
    grpc.StatusCode.UNAVAILABLE: XenonServerError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededException,
    grpc.StatusCode.UNAUTHENTICATED: XenonServerError,
}


AUTH_FAILED_NOTE = (' (xenon-grpc 3.0.1 says this for a refused key or password, an RSA key, '
                    'an unknown host key under strict host key checking, and a host that did '
                    'not answer within the connection timeout)')

# xenon-grpc reports some failures as a plain XenonException; the message tells what it is
_REFINE = [
    (re.compile(r'authentication failed|auth fail|permission denied \(publickey', re.I),
     InvalidCredentialException),
]


def make_exception(method: Any, error: grpc.RpcError) -> XenonException:
    """The :class:`XenonException` subclass matching a gRPC error raised by ``method``.

    The Java class named at the start of the details picks the class; without one the
    status code does (UNAVAILABLE: :class:`XenonServerError`, DEADLINE_EXCEEDED:
    :class:`DeadlineExceededException`), and anything else is an
    :class:`UnknownRpcException`. A plain ``XenonException`` whose message says that
    authentication failed becomes :class:`InvalidCredentialException` (xenon-grpc 3.0.1
    reports a refused key or password that way).
    """
    name = method if isinstance(method, str) else getattr(method, '__qualname__', repr(method))
    code = error.code() if hasattr(error, 'code') else None
    details = error.details() if hasattr(error, 'details') else str(error)
    if not details:
        code_name = code.name if isinstance(code, grpc.StatusCode) else code
        details = (f'xenon-grpc gave no details (gRPC status {code_name}: an unexpected error '
                   f'in the server, such as a Java runtime exception)')
    match = _JAVA_CLASS.match(details)
    cls: Type[XenonException] = UnknownRpcException
    if match and match.group(1) in EXCEPTIONS:
        cls, details = EXCEPTIONS[match.group(1)], match.group(2)
    elif match and match.group(1).endswith('Exception'):
        cls, details = XenonException, match.group(2)
    elif code in _BY_CODE:
        cls = _BY_CODE[code]
    if cls is XenonException:
        refined = next((better for pattern, better in _REFINE if pattern.search(details)), None)
        if refined is InvalidCredentialException:
            cls, details = refined, details + AUTH_FAILED_NOTE
    return cls(name, code, details)


def exception_from_message(method: str, message: str,
                           default: Type[XenonException] = XenonException) -> XenonException:
    """An exception for a status's ``error_message``, by the Java class it names if any.

    xenon-grpc 3.0.1 sometimes reports e.g. a cancelled copy with error type XENON and
    the message ``...CopyCancelledException: file adaptor: Copy cancelled by user``.
    """
    match = _JAVA_CLASS.match(message or '')
    if match and match.group(1) in EXCEPTIONS:
        return EXCEPTIONS[match.group(1)](method, None, match.group(2))
    return default(method, None, message)

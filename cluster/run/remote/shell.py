"""Remote commands as interactive jobs of Xenon's ``ssh`` scheduler, output streamed back.

xenon-grpc 3.0.1 writes to a command's stdin when the job starts; when the command has
already ended by then, the write fails and the stream ends with that error in place
of the output. So each command here keeps its SSH channel open: the remote shell runs
it with stdin from ``/dev/null`` (input, if any, is piped in from the command line),
prints an end marker with the exit code on stdout and stderr, and then waits for its
own stdin to close, which happens once both markers have arrived.
"""
from __future__ import annotations

import logging
import re
import shlex
import threading
import time
import uuid
from typing import Any, Optional, Sequence, Tuple

from .endpoint import HostUnreachableError, RemoteError
from .faults import RECOVER_TIMEOUT, failure_kind

logger = logging.getLogger(__name__)


def wrap(argv: Sequence[str], stdin: Optional[str], marker: str) -> str:
    """The ``sh -c`` script that runs ``argv`` and reports its end."""
    command = shlex.join(argv)
    command = (f'printf %s {shlex.quote(stdin)} | {command}' if stdin
               else f'{command} </dev/null')
    return (f'{command}; s=$?; printf "\\n{marker} %d\\n" "$s"; '
            f'printf "\\n{marker}\\n" >&2; cat >/dev/null; exit "$s"')


def _strip(data: bytearray, marker: str, with_code: bool) -> Tuple[Optional[str], Optional[int]]:
    """(output before the marker, exit code) once the marker line has arrived, else Nones."""
    text = data.decode(errors='replace')
    pattern = rf'\n{marker} (\d+)\n$' if with_code else rf'\n{marker}\n$'
    match = re.search(pattern, text)
    if not match:
        return None, None
    return text[:match.start()], int(match.group(1)) if with_code else 0


def run(connection: Any, argv: Sequence[str], stdin: Optional[str] = None,
        timeout: Optional[float] = 60) -> Tuple[int, str, str]:
    """Run ``argv`` through ``connection``'s ssh scheduler: (exit code, stdout, stderr).

    Exit code 124: ``timeout`` (seconds, for the whole call) passed first; 255: the
    connection was lost and the command may have run, or the host could not be reached
    in time. A command is only started again when it did not run (a lost SSH session,
    a server the call never reached), never after the server may have started it.
    """
    import xenon_backend as xb  # heavy: xenon_backend (grpc)
    argv = [str(a) for a in argv]
    deadline = time.monotonic() + (timeout or RECOVER_TIMEOUT)
    marker = f'__cluster_end_{uuid.uuid4().hex}__'
    description = xb.JobDescription(executable='sh', arguments=['-c', wrap(argv, stdin, marker)])
    finished = threading.Event()

    def hold_stdin():
        finished.wait()
        return
        yield  # pragma: no cover - a generator that sends nothing, then closes stdin

    def start(scheduler: Any, _: Any) -> Tuple[Any, Any, Any]:
        return (scheduler, *scheduler.submit_interactive_job(description, hold_stdin()))

    try:
        scheduler, job, stream = connection.call(start, retry=False, deadline=deadline)
    except BaseException as exc:
        finished.set()
        failed = _failed_start(connection, argv, exc)
        if failed is None:
            raise
        return failed
    return _collect(connection, argv, scheduler, job, stream, finished, marker,
                    deadline, timeout)


def _failed_start(connection: Any, argv: Sequence[str],
                  exc: BaseException) -> Optional[Tuple[int, str, str]]:
    """The result for a command that could not be started; None to raise ``exc``.

    A Xenon error that is not about the connection becomes a :class:`RemoteError`.
    """
    from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
    address = connection.endpoint.address
    if isinstance(exc, HostUnreachableError):
        return 255, '', f'{argv[0]} did not run: {exc}'
    if not isinstance(exc, xe.XenonException):
        return None
    kind = failure_kind(exc)
    if kind == 'server' or isinstance(exc, xe.DeadlineExceededException):
        logger.warning('the connection to %s was lost while %s started (it may have run): %s',
                       address, argv[0], exc)
        return 255, '', (f'the connection to {address} was lost while {argv[0]} started '
                         f'(it may have run)')
    if kind is not None:
        logger.warning('%s could not start on %s: %s', argv[0], address, exc)
        return 255, '', (f'{argv[0]} did not run: the connection to {address} could not be '
                         f'restored in time')
    raise RemoteError(f'cannot run {argv[0]} on {address}: {exc.message}') from None


def _collect(connection: Any, argv: Sequence[str], scheduler: Any, job: Any, stream: Any,
             finished: threading.Event, marker: str, deadline: float,
             timeout: Optional[float]) -> Tuple[int, str, str]:
    """Read a started command's output until both end markers, the deadline or a loss."""
    from xenon_backend.exceptions import XenonException  # heavy: xenon_backend (grpc)
    tail = marker.encode()
    out, err = bytearray(), bytearray()
    result_out = result_err = None
    code: Optional[int] = None
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        stream.cancel()

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    problem: Optional[Exception] = None
    try:
        for chunk in stream:
            out += chunk.stdout
            err += chunk.stderr
            if result_out is None and chunk.stdout and tail in out[-len(tail) - 16:]:
                result_out, code = _strip(out, marker, True)
            if result_err is None and chunk.stderr and tail in err[-len(tail) - 2:]:
                result_err, _ = _strip(err, marker, False)
            if result_out is not None and result_err is not None:
                finished.set()      # closes the remote stdin: the shell exits
    except XenonException as exc:
        problem = exc
    finally:
        finished.set()
        if timer is not None:
            timer.cancel()
    address = connection.endpoint.address
    if timed_out.is_set():
        try:
            scheduler.cancel_job(job)
        except XenonException as exc:
            logger.debug('cancelling %s: %s', argv[0], exc)
        return 124, out.decode(errors='replace'), (
            err.decode(errors='replace') + f'\ntimed out after {timeout} s on {address}')
    try:
        scheduler.wait_until_done(job, timeout=5000)  # lets the server forget the job
    except XenonException as exc:
        logger.debug('status of %s: %s', argv[0], exc)
    if result_out is None or result_err is None or code is None:
        # not repeated here: the command may have run (status commands are retried by
        # their callers, whose next try logs in again)
        logger.warning('the connection to %s was lost while %s ran: %s', address, argv[0],
                       problem or 'the output ended early')
        return 255, out.decode(errors='replace'), (
            err.decode(errors='replace')
            + f'\nthe connection to {address} was lost while {argv[0]} ran (it may have run)')
    logger.debug('ran %s on %s -> %s', argv[0], address, code)
    return code, result_out, result_err

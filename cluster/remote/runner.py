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
import uuid
from typing import Any, Optional, Sequence, Tuple

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
    """Run ``argv`` through ``connection``'s ssh scheduler: (exit code, stdout, stderr)."""
    import xenon_backend as xb
    from xenon_backend.exceptions import XenonException
    argv = [str(a) for a in argv]
    marker = f'__cluster_end_{uuid.uuid4().hex}__'
    tail = marker.encode()
    description = xb.JobDescription(executable='sh', arguments=['-c', wrap(argv, stdin, marker)])
    finished = threading.Event()

    def hold_stdin():
        finished.wait()
        return
        yield  # pragma: no cover - a generator that sends nothing, then closes stdin

    def start(scheduler: Any, _: Any) -> Tuple[Any, Any]:
        return scheduler.submit_interactive_job(description, hold_stdin())

    try:
        job, stream = connection.call(start)  # retried only here: it has not run yet
    except BaseException:
        finished.set()
        raise
    scheduler = connection.handles()[0]
    out, err = bytearray(), bytearray()
    result_out = result_err = None
    code: Optional[int] = None
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        stream.cancel()

    timer = threading.Timer(timeout, expire) if timeout else None
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
    if timed_out.is_set():
        try:
            scheduler.cancel_job(job)
        except XenonException as exc:
            logger.debug('cancelling %s: %s', argv[0], exc)
        return 124, out.decode(errors='replace'), (
            err.decode(errors='replace')
            + f'\ntimed out after {timeout} s on {connection.endpoint.address}')
    try:
        scheduler.wait_until_done(job, timeout=5000)  # lets the server forget the job
    except XenonException as exc:
        logger.debug('status of %s: %s', argv[0], exc)
    if result_out is None or result_err is None or code is None:
        # not repeated here: the command may have run (status commands are retried by
        # their callers, which find a new server then)
        return 255, out.decode(errors='replace'), (
            err.decode(errors='replace') + f'\nthe connection to {connection.endpoint.address}'
            f' was lost while {argv[0]} ran (it may have run)'
            + (f': {problem}' if problem else ''))
    logger.debug('ran %s on %s -> %s', argv[0], connection.endpoint.address, code)
    return code, result_out, result_err

"""Helpers shared by the batch system modules: retried commands, and the parsing of what
several schedulers print alike (times, durations, wait statuses, empty fields)."""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from ..run.errors import CommandError

logger = logging.getLogger(__name__)

#: a shell result: (exit_code, stdout, stderr)
Result = Tuple[int, str, str]


#: (shell, program) -> when its failures began, while they last; see :func:`run_retried`
_FAILING: Dict[Tuple[int, str], float] = {}
_FAILING_LOCK = threading.Lock()


def _failed(shell: Callable[..., Result], argv: Sequence[str], result: Result,
            attempt: int, tries: int, pause: float) -> None:
    """Log a failure about to be retried: WARNING the first time the program fails (naming
    it and the error), INFO while it goes on failing."""
    key = (id(shell), argv[0])
    with _FAILING_LOCK:
        first = key not in _FAILING
        _FAILING.setdefault(key, time.monotonic())
    code, out, err = result
    detail = (err or out).strip().replace('\n', ' ')[:300]
    logger.log(logging.WARNING if first else logging.INFO,
               '%s failed (exit %s: %s); try %d of %d in %.1f s%s', argv[0], code, detail,
               attempt + 1, tries, pause, ' (retrying while it fails)' if first else '')


def _answered(shell: Callable[..., Result], argv: Sequence[str]) -> None:
    """Log one INFO line when a program that was failing answers again."""
    key = (id(shell), argv[0])
    with _FAILING_LOCK:
        began = _FAILING.pop(key, None)
    if began is not None:
        logger.info('%s answers again after %.1f s of failures', argv[0],
                    time.monotonic() - began)


def run_retried(shell: Callable[..., Result], argv: Sequence[str], *, tries: int = 4,
                timeout: float = 60, backoff: float = 0.5,
                accept: Optional[Callable[[Result], bool]] = None,
                retry: Optional[Callable[[Result], bool]] = None) -> Result:
    """Run ``argv`` through ``shell``; retry failures with exponential backoff.

    ``accept(result)`` says a non-zero result is an answer after all (e.g. "unknown job
    id"); ``retry(result)`` says a failure is worth another try (default: every failure).
    After ``tries`` failures a :class:`CommandError` carrying the last output is raised.
    The first retry of a failing program logs a WARNING, its recovery one INFO line.
    """
    code, out, err = 127, '', ''
    for attempt in range(max(1, tries)):
        if attempt:
            pause = min(backoff * 2 ** (attempt - 1), 10.0)
            _failed(shell, argv, (code, out, err), attempt, tries, pause)
            time.sleep(pause)
        code, out, err = shell(list(argv), stdin=None, timeout=timeout)
        if code == 0 or (accept is not None and accept((code, out, err))):
            _answered(shell, argv)
            return code, out, err
        if retry is not None and not retry((code, out, err)):
            break
    raise CommandError(list(argv), code, out, err)


HEADER_UNSAFE = re.compile(r'[\s\'"\\]|[\x00-\x1f\x7f]')
_OUTPUT_KEYS = ('outfile', 'stdout', 'errfile', 'stderr')


def header_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    """``options`` less output paths that a header line cannot hold (spaces, quotes...).

    Such paths still reach the scheduler: the back ends also pass the output paths on
    the submit command line, where they are plain arguments.
    """
    kept = dict(options)
    for key in _OUTPUT_KEYS:
        value = kept.get(key)
        if value is not None and HEADER_UNSAFE.search(str(value)):
            logger.debug('%s %r goes on the command line only', key, value)
            del kept[key]
    return kept


def output_paths(options: Optional[Mapping[str, Any]]) -> Tuple[Optional[str], Optional[str]]:
    """(outfile, errfile) given in ``options`` (canonical names or synonyms), else None."""
    options = options or {}
    out = options.get('outfile', options.get('stdout'))
    err = options.get('errfile', options.get('stderr'))
    return (None if out is None else str(out)), (None if err is None else str(err))


def parse_iso(text: str) -> Optional[float]:
    """Epoch seconds from a scheduler's local ``YYYY-MM-DDTHH:MM:SS``; None for
    'Unknown', 'N/A', 'None' and anything else that is not a time."""
    text = (text or '').strip()
    try:
        return time.mktime(time.strptime(text, '%Y-%m-%dT%H:%M:%S'))
    except ValueError:
        return None


def parse_ctime(text: str) -> Optional[float]:
    """Epoch seconds from a ctime-style local time (``Sat Nov 21 03:51:13 2026``) or
    from a plain integer of epoch seconds; None otherwise."""
    text = ' '.join((text or '').split())
    if text.isdigit():
        return float(text)
    try:
        return time.mktime(time.strptime(text, '%a %b %d %H:%M:%S %Y'))
    except ValueError:
        return None


def parse_duration(hms: Optional[str]) -> Optional[int]:
    """``[[HH:]MM:]SS`` -> seconds (None if not a duration)."""
    try:
        total = 0
        for part in (hms or '').split(':'):
            total = total * 60 + int(part)
        return total
    except ValueError:
        return None


def wait_status(text: str) -> Optional[int]:
    """A POSIX wait status (768 is exit 3, 9 is SIGKILL) -> exit code, or 128 + signal."""
    try:
        status = int(text.strip())
    except ValueError:
        return None
    return 128 + (status & 0x7f) if status & 0x7f else status >> 8


_EMPTY = frozenset({'', 'None', 'none', '(null)', 'N/A', 'n/a', 'NONE', 'Unknown', 'undefined',
                    'None assigned'})


def field(text: Optional[str]) -> Optional[str]:
    """A listing's field, stripped; None for the ways schedulers print nothing."""
    text = (text or '').strip()
    return None if text in _EMPTY else text


_TROUBLE = ('unable to contact', 'connection refused', 'cannot connect', 'connect failure',
            'socket timed out', 'temporarily unable', 'communication', 'timed out')


def connection_problem(result: Result) -> bool:
    """Whether a failed command says it could not reach its server (worth a retry)."""
    text = (result[1] + result[2]).lower()
    return any(words in text for words in _TROUBLE)


def last_line(out: str) -> str:
    """The last non-empty line a command printed (a submit command's job id)."""
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return lines[-1] if lines else ''

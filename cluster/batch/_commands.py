"""Helpers shared by the scheduler back ends: retried status commands and time parsing."""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from ..errors import CommandError

logger = logging.getLogger(__name__)

#: a runner result: (exit_code, stdout, stderr)
Result = Tuple[int, str, str]


#: (runner, program) -> when its failures began, while they last; see :func:`run_retried`
_FAILING: Dict[Tuple[int, str], float] = {}
_FAILING_LOCK = threading.Lock()


def _failed(runner: Callable[..., Result], argv: Sequence[str], result: Result,
            attempt: int, tries: int, pause: float) -> None:
    """Log a failure about to be retried: WARNING the first time the program fails (naming
    it and the error), INFO while it goes on failing."""
    key = (id(runner), argv[0])
    with _FAILING_LOCK:
        first = key not in _FAILING
        _FAILING.setdefault(key, time.monotonic())
    code, out, err = result
    detail = (err or out).strip().replace('\n', ' ')[:300]
    logger.log(logging.WARNING if first else logging.INFO,
               '%s failed (exit %s: %s); try %d of %d in %.1f s%s', argv[0], code, detail,
               attempt + 1, tries, pause, ' (retrying while it fails)' if first else '')


def _answered(runner: Callable[..., Result], argv: Sequence[str]) -> None:
    """Log one INFO line when a program that was failing answers again."""
    key = (id(runner), argv[0])
    with _FAILING_LOCK:
        began = _FAILING.pop(key, None)
    if began is not None:
        logger.info('%s answers again after %.1f s of failures', argv[0],
                    time.monotonic() - began)


def run_retried(runner: Callable[..., Result], argv: Sequence[str], *, tries: int = 4,
                timeout: float = 60, backoff: float = 0.5,
                accept: Optional[Callable[[Result], bool]] = None,
                retry: Optional[Callable[[Result], bool]] = None) -> Result:
    """Run ``argv`` through ``runner``; retry failures with exponential backoff.

    ``accept(result)`` says a non-zero result is an answer after all (e.g. "unknown job
    id"); ``retry(result)`` says a failure is worth another try (default: every failure).
    After ``tries`` failures a :class:`CommandError` carrying the last output is raised.
    The first retry of a failing program logs a WARNING, its recovery one INFO line.
    """
    code, out, err = 127, '', ''
    for attempt in range(max(1, tries)):
        if attempt:
            pause = min(backoff * 2 ** (attempt - 1), 10.0)
            _failed(runner, argv, (code, out, err), attempt, tries, pause)
            time.sleep(pause)
        code, out, err = runner(list(argv), stdin=None, timeout=timeout)
        if code == 0 or (accept is not None and accept((code, out, err))):
            _answered(runner, argv)
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

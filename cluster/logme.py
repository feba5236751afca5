"""``log()`` and ``MIN_LEVEL``, kept for scripts written against the seed, on top of :mod:`logging`.

New code should use ``logging.getLogger(__name__)``. ``log()`` writes to a file or stream of
the caller's choosing (stderr by default) without configuring the root logger, and colours
the level name only when that stream is a terminal.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import IO, Optional, Union

logger = logging.getLogger(__name__)

#: messages below this level are dropped by :func:`log`
MIN_LEVEL = 'info'

LEVELS = {'debug': logging.DEBUG, 'verbose': logging.DEBUG, 'info': logging.INFO,
          'warn': logging.WARNING, 'warning': logging.WARNING, 'error': logging.ERROR,
          'critical': logging.CRITICAL}
_COLOURS = {logging.DEBUG: '\033[36m', logging.INFO: '\033[32m', logging.WARNING: '\033[33m',
            logging.ERROR: '\033[31m', logging.CRITICAL: '\033[1;31m'}


def _level(name: Union[str, int]) -> int:
    if isinstance(name, int):
        return name
    try:
        return LEVELS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f'unknown log level {name!r}; use one of {", ".join(LEVELS)}') from None


def log(message: str, level: Union[str, int] = 'info', logfile: Union[str, IO, None] = None,
        also_write: Optional[str] = None, min_level: Union[str, int, None] = None,
        kind: Optional[str] = None) -> None:
    """Write ``message`` with a timestamped level tag.

    ``logfile`` is a path (appended to) or an open stream (default: stderr);
    ``also_write`` ('stdout' or 'stderr') copies the line to that stream too;
    ``min_level`` overrides :data:`MIN_LEVEL`; ``kind`` is accepted as a synonym of level.
    The record also goes to this module's logger, so applications that configure
    logging see it.
    """
    number = _level(kind or level)
    logger.log(number, message)
    if number < _level(min_level or MIN_LEVEL):
        return
    streams = []
    if isinstance(logfile, str):
        with open(logfile, 'a') as handle:
            handle.write(_format(message, number, colour=False))
    else:
        streams.append(logfile or sys.stderr)
    if also_write:
        extra = {'stdout': sys.stdout, 'stderr': sys.stderr}.get(also_write)
        if extra is None:
            raise ValueError(f"also_write must be 'stdout' or 'stderr', not {also_write!r}")
        if extra not in streams:
            streams.append(extra)
    for stream in streams:
        stream.write(_format(message, number, colour=_is_tty(stream)))
        stream.flush()


def _is_tty(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _format(message: str, number: int, colour: bool) -> str:
    name = logging.getLevelName(number)
    if colour:
        name = f'{_COLOURS.get(number, "")}{name}\033[0m'
    return f'{time.strftime("%Y%m%d %H:%M:%S")} | {name} --> {message}\n'

"""Running commands and small file utilities: ``cmd``, ``which``, ``open_zipped``, ``split_file``.

``cmd`` is the one way this package runs an external program.
"""
from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import os
import shlex
import shutil
import subprocess
import time
from typing import IO, List, Optional, Sequence, Tuple, Union

from .errors import CommandError

logger = logging.getLogger(__name__)

Command = Union[str, Sequence[str]]


def cmd(command: Command, args: Optional[Sequence[str]] = None, stdout: Optional[IO] = None,
        stderr: Optional[IO] = None, tries: int = 1, *, check: bool = False,
        timeout: Optional[float] = None, stdin: Optional[str] = None,
        env: Optional[dict] = None, cwd: Optional[str] = None) -> Tuple[int, str, str]:
    """Run ``command`` (a list, or a string split with shell rules) without a shell.

    Returns ``(exit_code, stdout, stderr)``. With ``stdout``/``stderr`` file objects the
    output is also written there. ``tries`` re-runs a failing command with a short
    backoff. ``check=True`` raises :class:`CommandError` when the last try fails; a
    missing program or a timeout is reported as exit code 127 or 124.

    >>> cmd('echo hi')
    (0, 'hi\\n', '')
    """
    argv: List[str] = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    if args:
        argv += [str(a) for a in args]
    code, out, err = 127, '', ''
    for attempt in range(max(1, tries)):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 5))
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  timeout=timeout, env=env, cwd=cwd)
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except FileNotFoundError:
            code, out, err = 127, '', f'{argv[0]}: command not found'
        except subprocess.TimeoutExpired as exc:
            code = 124
            out = _text(exc.stdout)
            err = _text(exc.stderr) + f'\ntimed out after {timeout} s'
        logger.debug('ran %s -> %s', argv, code)
        if code == 0:
            break
    if stdout is not None:
        stdout.write(out)
    if stderr is not None:
        stderr.write(err)
    if check and code != 0:
        raise CommandError(argv, code, out, err)
    return code, out, err


def _text(data: Union[bytes, str, None]) -> str:
    if data is None:
        return ''
    return data.decode(errors='replace') if isinstance(data, bytes) else data


def which(program: str) -> Optional[str]:
    """Full path of ``program`` if it is an executable on PATH (or a path to one)."""
    if os.path.dirname(program):
        return program if os.path.isfile(program) and os.access(program, os.X_OK) else None
    return shutil.which(program)


_OPENERS = {'.gz': gzip.open, '.bz2': bz2.open, '.xz': lzma.open}


def open_zipped(infile: Union[str, os.PathLike, IO], mode: str = 'r') -> IO:
    """Open a plain, gzip, bz2 or xz file by its extension; text mode unless 'b' is in mode.

    A file object passed in is returned as it is.
    """
    if hasattr(infile, 'read') or hasattr(infile, 'write'):
        return infile  # type: ignore[return-value]
    path = os.fspath(infile)
    opener = _OPENERS.get(os.path.splitext(path)[1].lower())
    if opener is None:
        return open(path, mode)
    if 'b' not in mode and 't' not in mode:
        mode += 't'
    return opener(path, mode)


def split_file(infile: Union[str, os.PathLike], parts: int, outpath: str = '',
               keep_header: bool = True) -> List[str]:
    """Split ``infile`` into ``parts`` files of nearly equal line counts.

    With ``keep_header`` the first line is repeated at the top of every part. The parts
    are named ``<name>.<n>`` (n from 1) in ``outpath`` (default: beside the input), and
    their paths are returned. Compressed inputs are read transparently; parts are plain.
    """
    if parts < 1:
        raise ValueError(f'parts must be at least 1, not {parts!r}')
    with open_zipped(infile) as handle:
        lines = handle.readlines()
    header: List[str] = []
    if keep_header and lines:
        header, lines = lines[:1], lines[1:]
    name = os.path.basename(os.fspath(infile))
    for ext in _OPENERS:
        if name.endswith(ext):
            name = name[:-len(ext)]
    directory = outpath or os.path.dirname(os.path.abspath(os.fspath(infile)))
    os.makedirs(directory, exist_ok=True)
    size, extra = divmod(len(lines), parts)
    paths, start = [], 0
    for index in range(parts):
        stop = start + size + (1 if index < extra else 0)
        path = os.path.join(directory, f'{name}.{index + 1}')
        with open(path, 'w') as out:
            out.writelines(header + lines[start:stop])
        paths.append(path)
        start = stop
    return paths

"""Function jobs: the dill payload going in, the tagged result coming out.

``write_payload`` pickles a function with its arguments (mode 0600) and writes the
runner beside it; ``read_result`` returns the value or re-raises the remote exception
with the remote traceback attached. The runner itself is :mod:`cluster._runner`.
"""
from __future__ import annotations

import inspect
import logging
import os
import sys
from typing import Any, Callable, Optional, Sequence

from . import _runner
from .errors import JobError
from .script import JobFiles, write_atomic

logger = logging.getLogger(__name__)


class RemoteTraceback(JobError):
    """The traceback of an exception raised inside a job, as text; set as ``__cause__``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n\nremote traceback:\n{self.text}'


def runner_source() -> str:
    """The text of the runner file written next to each payload."""
    return inspect.getsource(_runner)


def write_payload(files: JobFiles, function: Callable, args: Sequence = (),
                  kwargs: Optional[dict] = None, imports: Sequence[str] = ()) -> None:
    """Pickle the call into ``files.pickle_in`` and the runner into ``files.function_py``.

    An object that cannot be pickled raises :class:`JobError` naming the function.
    """
    import dill
    context = {'imports': list(imports or ()), 'cwd': os.getcwd(),
               'sys_path': [os.path.abspath(p) for p in sys.path]}
    try:
        data = dill.dumps(context) + dill.dumps(
            (function, tuple(args or ()), dict(kwargs or {})), recurse=True)
    except Exception as exc:
        name = getattr(function, '__qualname__', repr(function))
        raise JobError(f'cannot pickle the call of {name} (function, args or kwargs): '
                       f'{type(exc).__name__}: {exc}') from exc
    write_atomic(files.pickle_in, data)
    write_atomic(files.function_py, runner_source())


def run_command(files: JobFiles, python: Optional[str] = None) -> str:
    """The shell command that runs the function job (quoted)."""
    import shlex
    return f'{shlex.quote(python or sys.executable)} {shlex.quote(files.function_py)}'


def run_in_process(files: JobFiles) -> int:
    """Run the payload in this process (used by local workers); 0 on success."""
    return _runner.run_files(files.pickle_in, files.pickle_out)


def read_result(files: JobFiles) -> Any:
    """Return the job's value, or raise its exception with the remote traceback as cause."""
    if not os.path.exists(files.pickle_out):
        raise JobError(f'function job {files.name} left no result ({files.pickle_out} missing)')
    try:
        result = _runner.load_pickle(files.pickle_out)
    except _runner.UnsafeFileError as exc:
        raise JobError(str(exc)) from None
    if result[0] == 'ok':
        return result[1]
    _, exc, text = result
    exc.remote_traceback = text
    if hasattr(exc, 'add_note'):
        exc.add_note(f'remote traceback:\n{text}')
    raise exc from RemoteTraceback(text)

"""Function jobs: the dill payload going in, the tagged result coming out.

``write_payload`` pickles a function with its arguments (mode 0600, atomically) and
writes the runner beside it; ``read_result`` returns the value or re-raises the remote exception
with the remote traceback attached. The runner itself is :mod:`cluster.script.runner`.
"""
from __future__ import annotations

import functools
import inspect
import io
import logging
import os
import shlex
import sys
import sysconfig
import types
from typing import Any, Callable, Dict, Optional, Sequence

from ..run.errors import JobError
from .files import JobFiles, write_atomic
from . import runner as _runner

logger = logging.getLogger(__name__)


class RemoteTraceback(JobError):
    """The traceback of an exception raised inside a job, as text; set as ``__cause__``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n\nremote traceback:\n{self.text}'


@functools.lru_cache(maxsize=1)
def runner_source() -> str:
    """The text of the runner file written next to each payload."""
    return inspect.getsource(_runner)


_INSTALLED: Dict[str, bool] = {}


def _install_roots() -> tuple:
    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[key]) for key in ('stdlib', 'platstdlib', 'purelib', 'platlib')
             if paths.get(key)}
    return tuple(root.rstrip(os.sep) + os.sep for root in roots)


def is_installed(module_name: Optional[str]) -> bool:
    """True when a module comes with Python or from an installed package, so the remote
    side can import it too: built in, or a file under the standard library or a
    site-packages/dist-packages directory. Anything else (the user's own ``pipeline.py``,
    a test module, ``__main__``) is shipped by value."""
    if not module_name or module_name == '__main__':
        return False
    if module_name in _INSTALLED:
        return _INSTALLED[module_name]
    module = sys.modules.get(module_name)
    path = getattr(module, '__file__', None) if module is not None else None
    if module is None:
        installed = True   # not loaded here: whatever refers to it goes by name
    elif path is None:
        installed = module_name.split('.')[0] in sys.builtin_module_names or \
            getattr(module, '__spec__', None) is None or \
            getattr(module.__spec__, 'origin', None) in ('built-in', 'frozen')
    else:
        real = os.path.realpath(path)
        parts = real.split(os.sep)
        installed = real.startswith(_install_roots()) or 'site-packages' in parts \
            or 'dist-packages' in parts
    _INSTALLED[module_name] = installed
    return installed


def _by_value_hook() -> bool:
    """Teach dill to pickle functions and classes of not-installed modules by value.

    dill decides by name lookup (``_locate_function``) whether a function or class goes
    by reference; for a pickler marked ``_cluster_portable`` the hook says "not found"
    for objects of modules :func:`is_installed` rejects. False when this dill lacks it.
    """
    from dill import _dill  # heavy: dill
    original = getattr(_dill, '_locate_function', None)
    if original is None:
        return False
    if getattr(original, '_cluster_hook', False):
        return True

    def locate(obj: Any, pickler: Any = None) -> bool:
        if getattr(pickler, '_cluster_portable', False) and \
                not is_installed(getattr(obj, '__module__', None)):
            return False
        return original(obj, pickler)
    locate._cluster_hook = True  # type: ignore[attr-defined]
    _dill._locate_function = locate
    return True


_PICKLER: Any = None


def _pickler_class() -> Any:
    """dill's Pickler, except that a module reached from a pickled function goes by name
    (imported again on the node) unless it is ``__main__``, or a module that is not
    installed in a payload for another machine. dill would otherwise pickle a module
    outside site-packages (the user's own, or an editable install) with its whole
    ``__dict__``, which fails on its locks and C objects."""
    global _PICKLER
    if _PICKLER is None:
        import dill  # heavy: dill
        from dill import _dill  # heavy: dill
        by_state = dill.Pickler.dispatch[types.ModuleType]

        def save_module(pickler: Any, module: types.ModuleType) -> None:
            name = module.__name__
            # the package itself goes by name: where it is not installed, the runner
            # stands in for it (cluster.Resume, what a checkpoint returns)
            if name == '__main__' or (getattr(pickler, '_cluster_portable', False)
                                      and not is_installed(name) and name != 'cluster'):
                return by_state(pickler, module)
            pickler.save_reduce(_dill._import_module, (name,), obj=module)

        class Pickler(dill.Pickler):
            dispatch = dill.Pickler.dispatch.copy()
        Pickler.dispatch[types.ModuleType] = save_module
        _PICKLER = Pickler
    return _PICKLER


def _dumps(obj: Any, by_value: bool) -> bytes:
    if not by_value:
        plain = _runner.plain_pickle(obj)  # the C pickler where it suffices: much faster
        if plain is not None:
            return plain
    elif not _by_value_hook():
        logger.warning('this dill cannot ship functions by value; they go by name')
    buffer = io.BytesIO()
    pickler = _pickler_class()(buffer, recurse=True)
    pickler._cluster_portable = by_value
    pickler.dump(obj)
    return buffer.getvalue()


def write_payload(files: JobFiles, function: Callable, args: Sequence = (),
                  kwargs: Optional[dict] = None, imports: Sequence[str] = (),
                  by_value: bool = False) -> None:
    """Pickle the call into ``files.pickle_in`` and the runner into ``files.function_py``.

    ``by_value=True`` is for another machine: functions and classes of modules that are
    not installed (see :func:`is_installed`) travel by value, and neither this
    machine's ``sys.path`` nor its working directory goes along.
    An object that cannot be pickled raises :class:`JobError` naming the function.
    """
    import dill  # heavy: dill
    context = {'imports': list(imports or ())}
    if not by_value:
        context.update(cwd=os.getcwd(), sys_path=[os.path.abspath(p) for p in sys.path])
    try:
        data = dill.dumps(context) + _dumps(
            (function, tuple(args or ()), dict(kwargs or {})), by_value)
    except Exception as exc:
        name = getattr(function, '__qualname__', repr(function))
        raise JobError(f'cannot pickle the call of {name} (function, args or kwargs): '
                       f'{type(exc).__name__}: {exc}') from exc
    write_atomic(files.pickle_in, data)
    write_atomic(files.function_py, runner_source())


def run_command(files: JobFiles, python: Optional[str] = None) -> str:
    """The shell command that runs the function job (quoted)."""
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
    raise exc from RemoteTraceback(text)   # the cause shows the traceback, once

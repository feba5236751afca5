"""Runs one function job: the file a node executes, and what local workers call.

This module needs only the standard library and dill, because ``cluster.function``
copies its source verbatim into ``<name>_func.<suffix>.py`` next to the payload, so
that a node (or a remote host) without ``cluster`` installed can run it::

    python <name>_func.<suffix>.py      # reads  <that file>.pickle.in
                                        # writes <that file>.pickle.out
The payload file holds two pickles: the context (sys_path, cwd, imports), applied first
so that the call can refer to the submitter's own modules, then the call (function, args,
kwargs). The result is
``('ok', value)`` or ``('error', exception, traceback_text)``, written atomically.
"""
import os
import stat
import sys
import tempfile
import traceback


class UnsafeFileError(RuntimeError):
    """A pickle lies where someone else could have written it."""


def check_private(path):
    """Refuse a pickle that is not ours or that others could have written."""
    uid = os.getuid()
    info = os.stat(path)
    if info.st_uid != uid or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeFileError(
            f'refusing to read {path}: it must be owned by uid {uid} and not writable '
            f'by group or others (mode {stat.filemode(info.st_mode)}, owner {info.st_uid})')
    directory = os.stat(os.path.dirname(os.path.abspath(path)))
    open_dir = directory.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if open_dir and not (directory.st_mode & stat.S_ISVTX and info.st_uid == uid):
        raise UnsafeFileError(
            f'refusing to read {path}: its directory is writable by others')


def load_pickle(path):
    """Unpickle ``path`` with dill after :func:`check_private`."""
    import dill
    check_private(path)
    with open(path, 'rb') as handle:
        return dill.load(handle)


def load_call(path):
    """Read a payload: apply its context (sys.path, cwd, imports), then unpickle the call."""
    import dill
    check_private(path)
    with open(path, 'rb') as handle:
        context = dill.load(handle)
        for entry in reversed(context.get('sys_path') or []):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        if context.get('cwd') and os.path.isdir(context['cwd']):
            os.chdir(context['cwd'])
        imported = _do_imports(context.get('imports'))
        vars(sys.modules['__main__']).update(imported)
        function, args, kwargs = dill.load(handle)
    namespace = getattr(function, '__globals__', None)
    if namespace is not None:
        for name, value in imported.items():
            namespace.setdefault(name, value)
    return function, args, kwargs


def dump_atomic(obj, path):
    """Pickle ``obj`` with dill into ``path`` (mode 0600) through a temporary file."""
    import dill
    data = dill.dumps(obj, recurse=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                               prefix='.' + os.path.basename(path) + '.')
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _do_imports(imports):
    """Run the ``imports`` keyword ('numpy', 'import numpy as np', 'from a import b')."""
    names = {}
    for spec in imports or ():
        spec = spec.strip()
        if spec.startswith(('import ', 'from ')):
            exec(spec, names)  # the payload is trusted code already
        else:
            names[spec.split('.')[0]] = __import__(spec)
    names.pop('__builtins__', None)
    return names


def _error(exc, text):
    """A picklable error tuple for ``exc``, falling back to a plain RuntimeError."""
    import dill
    try:
        dill.dumps(exc)
        return ('error', exc, text)
    except Exception:
        return ('error', RuntimeError(f'{type(exc).__name__}: {exc}'), text)


def run_files(pickle_in, pickle_out):
    """Run the payload in ``pickle_in``; write the tagged result; return 0 or 1."""
    try:
        function, args, kwargs = load_call(pickle_in)
        value = function(*args, **kwargs)
        result = ('ok', value)
    except BaseException as exc:  # the job's own failure, reported to the submitter
        result = _error(exc, traceback.format_exc())
    try:
        dump_atomic(result, pickle_out)
    except Exception as exc:
        text = traceback.format_exc()
        problem = TypeError(f'the return value could not be pickled: {exc}')
        result = ('error', problem, text)
        dump_atomic(result, pickle_out)
    if result[0] == 'error':
        sys.stderr.write(result[2])
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(run_files(__file__ + '.pickle.in', __file__ + '.pickle.out'))

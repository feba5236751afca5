"""Runs one function job: the file a node executes, and what local workers call.

This module needs only the standard library and dill, because :mod:`cluster.script.function`
copies its source verbatim into ``<name>_func.<suffix>.py`` next to the payload, so
that a node (or a remote host) without ``cluster`` installed can run it::

    python <name>_func.<suffix>.py      # reads  <that file>.pickle.in
                                        # writes <that file>.pickle.out
The payload file holds two pickles: the context (sys_path, cwd, imports), applied first
so that the call can refer to the submitter's own modules, then the call (function, args,
kwargs). The result is
``('ok', value)`` or ``('error', exception, traceback_text)``, written atomically; a
result that cannot be written (a full disk) is reported on stderr, exit code 1.
Pickles are opened without following symlinks and checked on the open descriptor.

A requeueable job (its body exports ``CLUSTER_REQUEUE``, the command that puts it back in
the queue, and ``CLUSTER_CHECKPOINT``, the path of its checkpoint) whose callable has a ``checkpoint`` method is checkpointed when asked by
SIGUSR2 (its time limit is near, or it is being preempted): ``checkpoint(*args, **kwargs)``
returns a :class:`Resume`, written to ``<that file>.pickle.resume``, the job requeues itself,
and the next attempt (``CLUSTER_ATTEMPT`` > 0) runs the Resume. SIGTERM (preempted, or
killed) writes the checkpoint only; the batch system decides whether the job runs again.
Where ``cluster`` is not installed (a remote host), a payload that names the package (a
checkpoint returning ``cluster.Resume``) gets a stand-in module holding this :class:`Resume`.
"""
import errno
import importlib.util
import os
import shlex
import shutil
import pickle
import signal
import stat
import subprocess
import sys
import tempfile
import traceback
import types

#: how the temporary files of :func:`write_atomic` end (``.<name>.<random>.part``)
TMP_SUFFIX = '.part'


class UnsafeFileError(RuntimeError):
    """A pickle lies where someone else could have written it."""


def open_private(path):
    """Open ``path`` for reading, never through a symlink, and check the open file: a
    regular file owned by this user, not writable by group or others, in a directory
    others cannot write to (unless sticky). Returns a binary file object."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(f'refusing to read {path}: it is a symbolic link') from None
        raise
    try:
        _check_open(path, os.fstat(fd))
        os.set_blocking(fd, True)
        return os.fdopen(fd, 'rb')
    except BaseException:
        os.close(fd)
        raise


def _check_open(path, info):
    uid = os.getuid()
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(f'refusing to read {path}: not a regular file '
                              f'({stat.filemode(info.st_mode)})')
    if info.st_uid != uid or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeFileError(
            f'refusing to read {path}: it must be owned by uid {uid} and not writable '
            f'by group or others (mode {stat.filemode(info.st_mode)}, owner {info.st_uid})')
    directory = os.stat(os.path.dirname(os.path.abspath(path)))
    open_dir = directory.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if open_dir and not directory.st_mode & stat.S_ISVTX:
        raise UnsafeFileError(
            f'refusing to read {path}: its directory is writable by others')


def load_pickle(path):
    """Unpickle ``path`` with dill, opened by :func:`open_private`."""
    import dill  # heavy: dill
    with open_private(path) as handle:
        return dill.load(handle)


def load_call(path, resume=None):
    """Read a payload: apply its context (sys.path, cwd, imports), then unpickle the call
    (from the checkpoint ``resume`` when given)."""
    import dill  # heavy: dill
    with open_private(path) as handle:
        context = dill.load(handle)
        for entry in reversed(context.get('sys_path') or []):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        if context.get('cwd') and os.path.isdir(context['cwd']):
            os.chdir(context['cwd'])
        imported = _do_imports(context.get('imports'))
        vars(sys.modules['__main__']).update(imported)
        _stand_in_for_cluster()
        function, args, kwargs = dill.load(handle) if resume is None else load_pickle(resume)
    namespace = getattr(function, '__globals__', None)
    if namespace is not None:
        for name, value in imported.items():
            namespace.setdefault(name, value)
    return function, args, kwargs


def _not_here(name):
    raise AttributeError(f'cluster.{name}: cluster is not installed on this host; a job '
                         'running here has cluster.Resume only')


def _stand_in_for_cluster():
    """Where ``cluster`` cannot be imported (a remote host), a payload that names it (a
    checkpoint returning ``cluster.Resume``) gets a module of this runner's :class:`Resume`
    (a plain module, which dill pickles by name again)."""
    if 'cluster' in sys.modules or importlib.util.find_spec('cluster') is not None:
        return
    stand_in = types.ModuleType('cluster', 'cluster stands in here: Resume only')
    stand_in.Resume, stand_in.__getattr__ = Resume, _not_here
    sys.modules['cluster'] = stand_in


def plain_pickle(obj):
    """``obj`` pickled by the standard (C) pickler, or None when it cannot or when the
    pickle refers to ``__main__`` (which another process lacks): then dill is needed.
    dill loads either."""
    try:
        data = pickle.dumps(obj, pickle.DEFAULT_PROTOCOL)
    except Exception:  # what only dill pickles (lambdas, closures...)
        return None
    return None if b'__main__' in data else data


def quick_dumps(obj, **dill_options):
    """``obj`` pickled by :func:`plain_pickle` where it can, else by dill."""
    data = plain_pickle(obj)
    if data is not None:
        return data
    import dill  # heavy: dill
    return dill.dumps(obj, **dill_options)


def write_atomic(path, data, mode=0o600, sync=True):
    """Write ``data`` (bytes, str, or a binary file read in chunks) to ``path``: a temporary file in the same directory,
    fsync, rename. Readers (and a driver killed midway) see the old file or the whole
    new one, never a part, and a failure leaves no temporary file behind. The rename
    replaces a symlink at ``path`` instead of following it. The one atomic write of the
    package; an OSError it raises names ``path``. ``sync=False`` skips the fsync, for a
    file read on this machine only and of no use after a crash (local mode's tasks)."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                                   prefix='.' + os.path.basename(path) + '.', suffix=TMP_SUFFIX)
        with os.fdopen(fd, 'wb') as handle:
            os.fchmod(fd, mode)
            if hasattr(data, 'read'):
                shutil.copyfileobj(data, handle, 1 << 20)
            else:
                handle.write(data)
            handle.flush()
            if sync:
                os.fsync(fd)
        os.replace(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        raise OSError(exc.errno, exc.strerror, path) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path):
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


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
    import dill  # heavy: dill
    try:
        dill.dumps(exc)
        return ('error', exc, text)
    except Exception:
        return ('error', RuntimeError(f'{type(exc).__name__}: {exc}'), text)


def picklable_outcomes(outcomes):
    """The tagged outcomes of several calls, each whose value cannot be pickled replaced by
    its call's error: one bad value fails its call alone."""
    import dill  # heavy: dill
    kept = []
    for tagged in outcomes:
        try:
            dill.dumps(tagged, recurse=True)
            kept.append(tagged)
        except Exception as exc:
            kept.append(('error', TypeError(f'the return value could not be pickled: '
                                            f'{exc}'), traceback.format_exc()))
    return kept


class Resume:
    """What a callable's ``checkpoint`` returns: the call the job's next attempt runs."""

    def __init__(self, callable, *args, **kwargs):
        self.callable, self.args, self.kwargs = callable, args, kwargs

    def __repr__(self):
        return f'Resume({self.callable!r}, *{self.args!r}, **{self.kwargs!r})'


def _attempt():
    """This run's attempt: 0 first, 1 after the first requeue... (from the job body)."""
    try:
        return int(os.environ.get('CLUSTER_ATTEMPT') or 0)
    except ValueError:
        return 0


def _mine(resume_path):
    """True when the job body named ``resume_path`` as this job's checkpoint (the variables
    of a requeueable job that submitted this one are not this job's)."""
    return bool(resume_path) and os.environ.get('CLUSTER_CHECKPOINT') == resume_path


def _say(text):
    sys.stderr.write(f'cluster: attempt {_attempt()}: {text}\n')
    sys.stderr.flush()


def _checkpointing(call, resume_path):
    """Checkpoint ``call`` (function, args, kwargs) into ``resume_path`` on SIGUSR2 (then
    requeue the job) or SIGTERM, where the job may be requeued and the callable checkpoints."""
    command = os.environ.get('CLUSTER_REQUEUE')
    if not (command and _mine(resume_path) and callable(getattr(call[0], 'checkpoint', None))):
        return
    limit = int(os.environ.get('CLUSTER_MAX_REQUEUES') or 0)
    taken = []

    def handler(signum, frame):
        asked = signum == signal.SIGUSR2
        if taken == ['busy']:
            return                           # a checkpoint is being written: it ends the job
        if taken or _attempt() >= limit:
            if not taken:
                _say(f'max_requeues={limit} reached: no checkpoint')
            if asked:
                return                       # run on, to the end or the time limit
            os._exit(128 + signum)
        taken.append('busy')
        function, args, kwargs = call
        try:
            resume = function.checkpoint(*args, **kwargs)
            if resume is None:
                _say('checkpoint() returned None: the job stops')
                os._exit(128 + signum)
            _write_resume(resume_path, resume)
        except Exception:                    # the job runs on, without a checkpoint
            _say('checkpoint failed:\n' + traceback.format_exc())
            taken[:] = ['failed']
            return
        taken[:] = ['written']
        if asked:
            done = subprocess.run(shlex.split(command), stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                _say(f'{command!r} failed (exit {done.returncode}); running on')
                return
        _say(f'checkpointed on {signal.Signals(signum).name}' + ('; requeued' if asked else ''))
        sys.stdout.flush()
        os._exit(128 + signum)

    signal.signal(signal.SIGUSR2, handler)
    signal.signal(signal.SIGTERM, handler)


def _write_resume(path, resume):
    import dill  # heavy: dill
    call = (resume.callable, tuple(resume.args), dict(resume.kwargs))
    write_atomic(path, dill.dumps(call, recurse=True))


def run_files(pickle_in, pickle_out, resume_path=None):
    """Run the payload in ``pickle_in`` (or, on a later attempt, its checkpoint at
    ``resume_path``); write the tagged result; return 0 or 1."""
    import dill  # heavy: dill
    try:
        resume = resume_path if _attempt() > 0 and _mine(resume_path) and \
            os.path.exists(resume_path) else None
        function, args, kwargs = load_call(pickle_in, resume)
        _checkpointing((function, args, kwargs), resume_path)
        value = function(*args, **kwargs)
        result = ('ok', value)
    except BaseException as exc:  # the job's own failure, reported to the submitter
        result = _error(exc, traceback.format_exc())
    try:
        data = dill.dumps(result, recurse=True)
    except Exception as exc:
        problem = TypeError(f'the return value could not be pickled: {exc}')
        result = ('error', problem, traceback.format_exc())
        data = dill.dumps(result, recurse=True)
    try:
        write_atomic(pickle_out, data)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        sys.stderr.write(f'cannot write the result to {pickle_out}: '
                         + ('the disk is full (' if full else '(') + f'{exc.strerror})\n')
        return 1
    if result[0] == 'error':
        sys.stderr.write(result[2])
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(run_files(__file__ + '.pickle.in', __file__ + '.pickle.out',
                       __file__ + '.pickle.resume'))

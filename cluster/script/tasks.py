"""Runs one task of an Executor's array: many calls in one Python process, one result file.

Standard library and dill only: :mod:`cluster.job.executor` copies this file next to the
job as ``<name>.<suffix>.tasks.py`` and the runner (:mod:`cluster.script.runner`) beside
it as ``<name>.<suffix>.runner.py``, so a node without ``cluster`` installed runs::

    python <name>.<suffix>.tasks.py <name>.<suffix> <index>
        # reads  <name>.<suffix>.task<index>.in  (0600: the context, then the calls)
        # writes <name>.<suffix>.task<index>.out (0600, atomically, once for all calls)

The result is ``('ok', [tagged, ...])`` with one ``('ok', value)`` or
``('error', exception, traceback_text)`` per call, in order. A task whose calls raised
still exits 0: its result file says which failed, and a dependent call (a future given
as an argument, see :data:`REF`) fails with the reason when it reads that result.
"""
import os
import sys
import traceback

try:
    from . import runner as _runner
except ImportError:  # run as a copied file: the runner's copy lies beside it
    import importlib.util as _util
    _spec = _util.spec_from_file_location(
        '_cluster_runner', __file__[:-len('.tasks.py')] + '.runner.py')
    _runner = _util.module_from_spec(_spec)
    _writes = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ beside the job's files: clean leaves none
    try:
        _spec.loader.exec_module(_runner)
    finally:
        sys.dont_write_bytecode = _writes

#: the first item of a tuple that stands for another call's value:
#: (REF, result file of its task, its position in that task, its description)
REF = '__cluster_future_value__'


class DependencyFailed(RuntimeError):
    """A call's argument was the value of a call that failed or left no result."""


def task_paths(base, index):
    """(payload, result) of task ``index`` of the array whose files start with ``base``."""
    return f'{base}.task{index}.in', f'{base}.task{index}.out'


def _read_ref(ref, cache):
    _, path, position, what = ref
    if path not in cache:
        try:
            cache[path] = _runner.load_pickle(path)[1]
        except (OSError, EOFError, _runner.UnsafeFileError) as exc:
            raise DependencyFailed(f'{what} left no readable result ({path}): {exc}') from None
    tagged = cache[path][position]
    if tagged[0] != 'ok':
        raise DependencyFailed(f'{what} failed: {type(tagged[1]).__name__}: {tagged[1]}')
    return tagged[1]


def resolve(value, cache):
    """``value`` with every future reference in it (lists, tuples, dicts) replaced by the
    value it stands for."""
    if isinstance(value, tuple) and len(value) == 4 and value[0] == REF:
        return _read_ref(value, cache)
    if isinstance(value, list):
        return [resolve(item, cache) for item in value]
    if isinstance(value, tuple):
        return tuple(resolve(item, cache) for item in value)
    if isinstance(value, dict):
        return {key: resolve(item, cache) for key, item in value.items()}
    return value


def _apply_context(context):
    for entry in reversed(context.get('sys_path') or []):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if context.get('cwd') and os.path.isdir(context['cwd']):
        os.chdir(context['cwd'])
    vars(sys.modules['__main__']).update(_runner._do_imports(context.get('imports')))


def _call(function, args, kwargs, cache):
    try:
        value = function(*resolve(args, cache), **resolve(kwargs, cache))
        return ('ok', value)
    except BaseException as exc:  # the call's own failure, reported to the submitter
        return _runner._error(exc, traceback.format_exc())


def _dump(results):
    """The result file's bytes; a value that cannot be pickled fails its call alone."""
    import dill  # heavy: dill
    try:
        return _runner.quick_dumps(('ok', results), recurse=True)
    except Exception:
        pass
    return dill.dumps(('ok', _runner.picklable_outcomes(results)), recurse=True)


def run_task(base, index, sync=True):
    """Run every call of task ``index``; write its result file (``sync``: fsynced);
    return 0 (1 when the payload or the result file could not be read or written)."""
    import dill  # heavy: dill
    payload, result = task_paths(base, index)
    saved_path, saved_cwd = list(sys.path), os.getcwd()
    try:
        with _runner.open_private(payload) as handle:
            _apply_context(dill.load(handle))
            calls = dill.load(handle)
        cache = {}
        data = _dump([_call(function, args, kwargs, cache)
                      for function, args, kwargs in calls])
    except Exception as exc:
        sys.stderr.write(f'cannot run task {index} of {base}: {exc}\n')
        return 1
    finally:
        sys.path[:] = saved_path
        os.chdir(saved_cwd)
    try:
        _runner.write_atomic(result, data, sync=sync)
    except OSError as exc:
        sys.stderr.write(f'cannot write the result of task {index} to {result}: {exc}\n')
        return 1
    return 0


def run_here(base, index):
    """:func:`run_task` in a local worker (its files are read on this machine only, so
    not fsynced): an error when the task could not run."""
    if run_task(base, index, sync=False):
        raise RuntimeError(f'task {index} of {base} could not run (see its stderr)')
    return 0


if __name__ == '__main__':
    sys.exit(run_task(sys.argv[1], int(sys.argv[2])))

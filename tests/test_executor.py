"""cluster.Executor on every place the suite has (local, Slurm, the Torque wrappers, and both
over SSH: the ``target`` fixture), plus the array forms the Slurm back end parses."""
from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import time

import pytest
from conftest import _require_slurm

import cluster
from cluster import JobError
from cluster.batch import State
from cluster.batch._arrays import array_spec, expand, task_ids
from cluster.batch._slurm_arrays import parse_config_value
from cluster.batch.slurm import parse_sacct, parse_squeue
from cluster.job.progress import Progress
from cluster.script.function import RemoteTraceback

DEADLINE = 240


def square(x):
    if x == 7:
        raise ValueError('seven is refused')
    return x * x


def total(values):
    return sum(values)


def nested(data, extra=None):
    return data['a'][0] + data['b'][1][0] + (extra or 0)


def nap(seconds):
    time.sleep(seconds)
    return seconds


def test_submit_gathers_calls_into_one_array_and_wait_works(target, in_tmp):
    with cluster.Executor(**target) as ex:
        futures = [ex.submit(square, i) for i in range(10)]
        assert all(isinstance(f, cf.Future) for f in futures)
        done, not_done = cf.wait(futures, timeout=DEADLINE)
        assert not not_done and len(done) == 10
        ids = {f.job.id for f in futures}
        assert len({i.split('_')[0] for i in ids}) == (1 if ex.system.array_variable
                                                        else len(ids))
        assert [f.result() for f in futures if f.exception() is None] == \
            [i * i for i in range(10) if i != 7]
        assert isinstance(futures[7].exception(), ValueError)
        assert isinstance(futures[7].exception().__cause__, RemoteTraceback)
        assert sorted(f.result() for f in cf.as_completed(futures[:3], DEADLINE)) == [0, 1, 4]
    assert not [p for p in os.listdir(in_tmp) if '.task' in p]  # cleaned at shutdown


def test_map_is_ordered_and_reraises_at_position(target, in_tmp):
    with cluster.Executor(**target) as ex:
        assert list(ex.map(square, range(7), timeout=DEADLINE, chunksize=3)) == \
            [i * i for i in range(7)]
        results = ex.map(square, range(5, 10), timeout=DEADLINE)
        assert next(results) == 25 and next(results) == 36
        with pytest.raises(ValueError, match='seven'):
            next(results)


def counter_or_generator(x):
    return (i for i in range(x)) if x == 1 else x  # no pickler takes a generator


@pytest.mark.parametrize('qtype', ['local', pytest.param('slurm', marks=pytest.mark.slurm)])
def test_a_value_that_cannot_be_pickled_fails_its_call_alone(qtype, in_tmp):
    """Locally the chunk's values come back through a pipe, on Slurm in the task's result
    file: either way the call whose value cannot be pickled fails, its chunk-mates do not."""
    if qtype == 'slurm':
        _require_slurm('slurm')
    with cluster.Executor(qtype=qtype) as ex:
        results = ex.map(counter_or_generator, [0, 2, 1], timeout=DEADLINE, chunksize=3)
        assert next(results) == 0 and next(results) == 2  # one chunk: the same task
        with pytest.raises(TypeError, match='the return value could not be pickled'):
            next(results)


def test_futures_as_arguments_become_dependencies(target, in_tmp):
    with cluster.Executor(**target) as ex:
        first = ex.submit(nap, 1)
        second = ex.submit(square, 3)
        combined = ex.submit(nested, {'a': (first,), 'b': [0, [second]]}, extra=second)
        assert combined.result(DEADLINE) == 1 + 9 + 9
        assert first.done()  # the dependent ran after it (afterok)
        failed = ex.submit(square, 7)
        dependent = ex.submit(total, [failed])
        with pytest.raises(Exception, match='dependency square .*failed.*seven'):
            dependent.result(DEADLINE)


def test_job_depends_accepts_a_future(target, in_tmp, rundir):
    with cluster.Executor(**target) as ex:
        future = ex.submit(nap, 1)
        marker = rundir / 'after'
        job = cluster.Job(f'touch {marker}', depends=[future],
                          **target).submit()
        assert job.wait(DEADLINE) and marker.exists()
        # its task ended before the dependent ran; over SSH its future settles at a later poll
        assert future.result(DEADLINE) == 1


def test_cancel_cancels_a_pending_task(target, in_tmp):
    with cluster.Executor(**target) as ex:
        slow = ex.submit(nap, 4)
        waiting = ex.submit(total, [slow])
        task_id = waiting.job.id
        assert waiting.cancel()
        assert waiting.cancelled()
        info = cluster.queue.watcher(ex.system).wait([task_id], DEADLINE)[task_id]
        # a pending array task cancelled alone leaves Slurm without an accounting record;
        # Grid Engine's qdel of a pending job leaves it no exit code (FAILED)
        assert info.state in (State.CANCELLED, State.FAILED) or (
            ex.system.array_variable and info.state is State.UNKNOWN
            and 'neither in the queue nor in the accounting' in info.reason)
        listed = ex.system.statuses([task_id]).get(task_id)
        assert listed is None or listed.state.final
        assert slow.result(DEADLINE) == 4


def test_unpicklable_argument_fails_at_submit_naming_it(in_tmp):
    with cluster.Executor(qtype='local') as ex:
        with pytest.raises(JobError, match='argument 0 of square .generator.'):
            ex.submit(square, (i for i in range(3)))
        with pytest.raises(JobError, match='keyword argument .x. of nested'):
            ex.submit(nested, 1, x=(i for i in range(3)))
        assert not ex._pending  # nothing of them was kept


def test_map_names_its_unpicklable_argument_and_runs_main_functions(in_tmp):
    with cluster.Executor(qtype='local') as ex:
        with pytest.raises(JobError, match='argument 0 of square .generator.'):
            ex.map(square, [1, (i for i in range(3)), 2])
        assert not ex._tasks  # nothing of that map was sent
        namespace = {'__name__': '__main__'}
        exec('def twice(x):\n    return 2 * x\n', namespace)  # a function of __main__
        assert list(ex.map(namespace['twice'], range(4), timeout=DEADLINE)) == [0, 2, 4, 6]


def suicide(x):
    if x == 4:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def interval(x):
    start = time.time()
    time.sleep(0.2)  # the call's own work: its run interval is what the test reads
    return os.getpid(), start, time.time()


def test_local_map_runs_chunks_forked_from_memory_one_future_each(in_tmp):
    with cluster.Executor(qtype='local') as ex:
        results = ex.map(square, range(7), timeout=DEADLINE, chunksize=3)
        assert not [p for p in os.listdir(in_tmp) if '.task' in p]  # nothing on disk
        assert [len(t.futures) for t in ex._tasks] == [1, 1, 1] and \
            all(t.forked and t.futures[0].job is t for t in ex._tasks)
        assert [next(results) for _ in range(7)] == [i * i for i in range(7)]
        error = pytest.raises(ValueError, next, ex.map(square, [7], timeout=DEADLINE)).value
        assert isinstance(error.__cause__, RemoteTraceback) and 'seven' in error.remote_traceback
        assert Progress.counts(ex._tasks) == (8, 7, 1, 0)
        pids = {pid for pid, _, _ in ex.map(interval, range(6), timeout=DEADLINE,
                                            chunksize=1)}
        assert len(pids) <= ex.slots and os.getpid() not in pids  # a worker per core


def test_local_map_a_killed_chunk_fails_its_calls_with_the_reason(in_tmp):
    with cluster.Executor(qtype='local') as ex:
        results = ex.map(suicide, range(9), timeout=DEADLINE, chunksize=3)
        assert [next(results) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(JobError, match=r'task 1 of suicide .*killed by signal 9 '
                                           r'\(SIGKILL\); its calls left no result'):
            next(results)
        last = ex._tasks[2].futures[0]
        assert [tagged[1] for tagged in last.result(DEADLINE)] == [6, 7, 8]


def test_local_map_honours_cores_and_time(in_tmp):
    cores = cluster.Executor(qtype='local').slots
    with cluster.Executor(qtype='local', cores=cores) as ex:   # each chunk takes every core
        spans = sorted(run[1:] for run in ex.map(interval, range(4), timeout=DEADLINE,
                                                 chunksize=1))
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # one at a time
    with cluster.Executor(qtype='local', time='00:00:01') as ex:
        with pytest.raises(JobError, match='ended timeout: time limit of 1 s reached'):
            list(ex.map(nap, [30], timeout=DEADLINE))


def test_local_map_chunks_not_started_are_cancelled_at_shutdown(in_tmp):
    cores = cluster.Executor(qtype='local').slots
    ex = cluster.Executor(qtype='local', cores=cores)          # one chunk at a time
    ex.map(nap, [0.5] * 4, chunksize=1)
    queue = ex.system.job_queue()
    first = queue.jobs[int(ex._tasks[0].id)]
    end = time.monotonic() + DEADLINE
    while first.state is State.PENDING and time.monotonic() < end:
        time.sleep(0.01)  # polling for the first chunk to start, with a deadline
    ex.shutdown(wait=True, cancel_futures=True)
    futures = [t.futures[0] for t in ex._tasks]
    assert all(f.done() for f in futures) and futures[-1].cancelled()
    assert futures[0].result() == [('ok', 0.5)]                # it ran: cancel() refused
    assert queue.jobs[int(ex._tasks[-1].id)].state is State.CANCELLED


def test_local_map_takes_futures_as_arguments(in_tmp):
    with cluster.Executor(qtype='local') as ex:
        first = ex.submit(square, 3)
        assert list(ex.map(total, [[first], [first, 1]], timeout=DEADLINE)) == [9, 10]
        assert isinstance(first, cluster.JobFuture) and first.job.id is not None


def test_bad_keyword_and_throttle_are_refused():
    with pytest.raises(cluster.OptionError):
        cluster.Executor(qtype='local', no_such_keyword=1)
    with pytest.raises(JobError, match='throttle'):
        cluster.Executor(qtype='local', throttle=0)
    # where tasks cannot be requeued, asking for it is refused, never silently ignored
    with pytest.raises(cluster.OptionError, match='local cannot requeue'):
        cluster.Executor(qtype='local', requeue=True)


def test_shutdown_cancel_futures_cancels_the_waiting_ones(in_tmp):
    ex = cluster.Executor(qtype='local', cores=1)
    futures = [ex.submit(nap, 0.5) for _ in range(8)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(f.done() for f in futures)
    assert any(f.cancelled() for f in futures)
    with pytest.raises(RuntimeError):
        ex.submit(nap, 0)


def test_progress_counts_and_is_off_without_a_terminal(in_tmp):
    with cluster.Executor(qtype='local', progress=True) as ex:
        futures = [ex.submit(square, i) for i in range(8)]
        cf.wait(futures, DEADLINE)
        assert Progress.counts([f.job for f in futures[:1]]) == (
            len(futures[0].job.futures), len(futures[0].job.futures), 0, 0)
        assert ex._collector.counts()[:3] == (8, 7, 1)
        assert ex._collector.progress.on is False  # pytest's stderr is not a terminal


def test_progress_setting_is_validated(private_config):
    from cluster import config_file
    with pytest.raises(cluster.ConfigError):
        config_file.set('executor', 'progress', 'maybe')


# -- the array forms ---------------------------------------------------------------------

def test_compressed_array_ids_expand():
    assert expand('123_[4-6%2]') == ['123_4', '123_5', '123_6']
    assert expand('123_[1,3-4]') == ['123_1', '123_3', '123_4']
    assert expand('123_3') == ['123_3'] and expand('123') == ['123']
    assert task_ids('77', 3) == ['77_0', '77_1', '77_2']
    assert array_spec({'array': (49, 8)}) == '0-49%8' and array_spec({}) is None
    assert parse_config_value('MaxArraySize            = 50\n', 'MaxArraySize') == 50


def test_squeue_and_sacct_array_lines_are_tasks():
    squeue = ('123_[4-6%8]|PENDING|JobArrayTaskLimit|me|(null)|N/A|N/A|f\n'
              '123_3|RUNNING|None|me|n1|2026-01-01T00:00:00|N/A|f\n')
    jobs = parse_squeue(squeue)
    assert set(jobs) == {'123_3', '123_4', '123_5', '123_6'}
    assert jobs['123_5'].state is State.PENDING and jobs['123_5'].id == '123_5'
    assert jobs['123_3'].state is State.RUNNING
    sacct = ('123_3|CANCELLED by 0|0:15|None|me|n1|2026-01-01T00:00:00|2026-01-01T00:01:00\n'
             '123_[7-8]|PENDING|0:0|None|me|None|Unknown|Unknown\n')
    final = parse_sacct(sacct)
    assert final['123_3'].state is State.CANCELLED and set(final) >= {'123_7', '123_8'}

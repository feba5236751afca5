"""cluster.Executor on Slurm's Torque wrappers: one ``qsub -t`` per chunk, each task followed
on its own (qstat cannot name tasks: cluster/batch/_torque_arrays.py), a task cancelled
mid-array, the throttle, and MaxArraySize (tests/cluster/slurm_conf.sh)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cluster
from cluster import JobError
from cluster.batch import State
from cluster.queue import watcher
from conftest import _require_slurm
from array_work import interval, nap, square
from support import most_at_once, until

HERE = Path(__file__).resolve().parent
CONF_SCRIPT = HERE / 'cluster' / 'slurm_conf.sh'
DEADLINE = 240

pytestmark = pytest.mark.torque


def logged(shims: Path, command: str, log: Path) -> None:
    """A ``command`` first on PATH that notes its arguments, then runs the real one."""
    real = subprocess.run(['bash', '-c', f'command -v {command}'], capture_output=True,
                          text=True).stdout.strip()
    assert real, f'no {command} on PATH'
    shims.mkdir(exist_ok=True)
    (shims / command).write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    (shims / command).chmod(0o755)


@pytest.fixture
def counted(in_tmp, monkeypatch):
    """qsub, qstat and sacct calls of this process, each a list of argument lines."""
    _require_slurm('torque')
    logs = {name: in_tmp / f'{name}.log' for name in ('qsub', 'qstat', 'sacct')}
    for name, log in logs.items():
        logged(in_tmp / 'bin', name, log)
    monkeypatch.setenv('PATH', f'{in_tmp / "bin"}:{os.environ["PATH"]}')
    return lambda name: logs[name].read_text().splitlines() if logs[name].exists() else []


def test_a_map_is_one_qsub_of_an_array_and_its_values_come_in_order(counted):
    calls = 12
    with cluster.Executor(qtype='torque', cores=1, time='00:03:00') as ex:
        results = list(ex.map(square, range(calls), chunksize=1, timeout=DEADLINE))
        polls = watcher(ex.system).polls
        assert len(ex.jobs) == 1 and ex.jobs[0].id.isdigit()
        assert [t.id for t in ex.jobs[0].tasks] == [f'{ex.jobs[0].id}_{i}' for i in range(calls)]
    assert results == [x * x for x in range(calls)]
    qsubs = counted('qsub')
    assert len(qsubs) == 1 and f'-t 0-{calls - 1} ' in qsubs[0], qsubs
    statuses = [line for line in counted('qstat') if line != '--version']
    assert 0 < len(statuses) <= polls, (statuses, polls)  # one qstat per poll, for all
    print(f'{calls} tasks: 1 qsub, {len(statuses)} qstat, {len(counted("sacct"))} sacct, '
          f'{polls} polls')


def test_a_task_cancelled_mid_array_fails_only_its_calls(counted):
    with cluster.Executor(qtype='torque', cores=1, time='00:03:00', throttle=4) as ex:
        # 8 calls, 4 slots, one task per slot: 2 calls per task, task 1 holds nap(150), nap(0)
        calls = [(square, 0), (square, 1), (nap, 150), (nap, 0),
                 (square, 4), (square, 5), (square, 6), (square, 8)]
        futures = [ex.submit(fn, arg) for fn, arg in calls]
        killed = futures[2].job
        assert futures[3].job is killed and futures[1].job is not killed
        assert len({f.job.id.split('_')[0] for f in futures}) == 1  # one array
        try:
            until(futures[2].running, DEADLINE, f'task {killed.id} running')
            ex.system.cancel([killed.id])  # the wrappers' qdel would cancel all: scancel
        finally:
            if not futures[2].done():
                subprocess.run(['scancel', killed.id], capture_output=True)
        for future in futures[2:4]:
            with pytest.raises(JobError, match=rf'{killed.id}\) ended cancelled'):
                future.result(DEADLINE)
        kept = [f.result(DEADLINE) for i, f in enumerate(futures) if i not in (2, 3)]
        assert kept == [0, 1, 16, 25, 36, 64]
    assert len(counted('qsub')) == 1 and '%4 ' in counted('qsub')[0]


def test_throttle_caps_the_running_tasks_of_all_arrays(counted):
    """throttle=1 over two arrays: -t 0-1%1, and the second waits for the first
    (afterany), so never two tasks at once, though the node has two cores."""
    with cluster.Executor(qtype='torque', cores=1, time='00:03:00', throttle=1) as ex:
        first = ex.map(interval, [1.5, 1.5], chunksize=1, timeout=DEADLINE)
        second = ex.map(interval, [1.5, 1.5], chunksize=1, timeout=DEADLINE)
        assert len(ex.jobs) == 2
        a = ex.jobs[0].id
        intervals = list(first) + list(second)
    assert most_at_once(intervals) == 1, intervals
    assert min(s for s, _ in intervals[2:]) >= max(e for _, e in intervals[:2])
    qsubs = counted('qsub')
    assert len(qsubs) == 2 and all('-t 0-1%1 ' in line for line in qsubs), qsubs
    assert f'depend=afterany:{a} ' in qsubs[1], qsubs


def test_chunks_follow_the_array_limit_each_from_index_0(counted):
    """7 tasks under a limit of 5 (set on the instance, below the test Slurm's
    MaxArraySize; the alone test below lowers Slurm's own): -t 0-4, then -t 0-1."""
    with cluster.Executor(qtype='torque', cores=1, time='00:03:00') as ex:
        ex.system._array_limit = 5  # what array_limit() read once from scontrol
        assert list(ex.map(square, range(7), chunksize=1, timeout=DEADLINE)) == \
            [x * x for x in range(7)]
        assert [[t.index for t in job.tasks] for job in ex.jobs] == [list(range(5)), [0, 1]]
    qsubs = counted('qsub')
    assert len(qsubs) == 2 and '-t 0-4 ' in qsubs[0] and '-t 0-1 ' in qsubs[1], qsubs


def test_a_task_is_followed_by_a_process_that_did_not_submit_it(counted):
    """What ``cluster wait 123_4`` does: a fresh Torque instance and Watcher follow an
    array task to its end (qstat names no task: the watcher tells the system its id)."""
    import getpass
    from cluster.batch.torque import Torque
    from cluster.queue import Watcher
    with cluster.Executor(qtype='torque', cores=1, time='00:03:00') as ex:
        futures = [ex.submit(nap, 3), ex.submit(nap, 0)]
        task_id = futures[0].job.id
        assert task_id.endswith('_0')
        info = Watcher(Torque(), getpass.getuser(), interval=0.5).wait([task_id], DEADLINE)
        assert (info[task_id].state, info[task_id].exitcode) == (State.COMPLETED, 0)
        assert futures[0].result(DEADLINE) == 3


SCRIPT = '''\
import json
import cluster


def add_one(x):
    return x + 1


with cluster.Executor(qtype='torque', cores=1, time='00:05:00') as ex:
    results = list(ex.map(add_one, range({calls}), chunksize=1, timeout={deadline}))
    arrays = [[job.id, [task.index for task in job.tasks]] for job in ex.jobs]
    limit = ex.system.array_limit()
print(json.dumps({{'results': results, 'arrays': arrays, 'limit': limit}}))
'''


@pytest.mark.alone
def test_arrays_split_at_a_low_max_array_size(in_tmp):
    """52 tasks under MaxArraySize=50: two qsub calls, -t 0-49 and -t 0-1."""
    _require_slurm('torque')
    calls = 52
    (in_tmp / 'run_map.py').write_text(SCRIPT.format(calls=calls, deadline=DEADLINE))
    log = in_tmp / 'qsub.log'
    logged(in_tmp / 'bin', 'qsub', log)
    env = dict(os.environ, PATH=f'{in_tmp / "bin"}:{os.environ["PATH"]}')
    done = subprocess.run(['bash', str(CONF_SCRIPT), 'with', 'MaxArraySize=50', '--',
                           sys.executable, 'run_map.py'], capture_output=True, text=True,
                          env=env, timeout=DEADLINE + 120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out['limit'] == 50
    assert out['results'] == [x + 1 for x in range(calls)]
    assert [indices for _, indices in out['arrays']] == [list(range(50)), [0, 1]]
    submitted = log.read_text().splitlines()
    assert ['-t 0-49 ' in line for line in submitted] == [True, False], submitted
    assert '-t 0-1 ' in submitted[1]
    limit = subprocess.run(['bash', str(CONF_SCRIPT), 'get', 'MaxArraySize'],
                           capture_output=True, text=True).stdout.strip()
    assert limit != '50'  # put back


def test_the_wrappers_array_limit_is_slurms_max_array_size():
    _require_slurm('torque')
    from cluster.batch.torque import Torque
    config = subprocess.run(['scontrol', 'show', 'config'], capture_output=True,
                            text=True).stdout
    value = next(line.split('=')[1].strip() for line in config.splitlines()
                 if line.startswith('MaxArraySize'))
    assert Torque().array_limit() == int(value)


def test_one_job_per_task_where_the_flavour_has_no_arrays():
    """Real Torque and PBS Pro (not on this machine) keep one job per task: no index
    variable, a limit of 1."""
    from cluster.batch.torque import Torque
    for flavour in ('torque', 'pbspro'):
        system = Torque()
        system._flavour = flavour
        assert (system.array_variable, system.array_limit()) == (None, 1)

"""cluster.Executor on the real Grid Engine of tests/cluster/sge_up.sh: native arrays
(``qsub -t 1-N -tc T``, tasks numbered from 1, known as ``<job>_<n-1>``), a task deleted
mid-array, the throttle; and the array forms of qstat and qacct (samples in tests/data/sge/)."""
from __future__ import annotations

import subprocess

import pytest
from batch_helpers import FakeShell, data
from conftest import use_sge
from array_work import interval, nap, square
from support import until

import cluster
from cluster import JobError
from cluster.batch import State, local_shell
from cluster.batch.sge import GridEngine
from cluster.batch._sge_parse import listed_keys, max_array_tasks, split_key

DEADLINE = 180


@pytest.fixture
def sge(monkeypatch, in_tmp):
    use_sge(monkeypatch)
    return {'qtype': 'sge'}


def counting(calls):
    def shell(argv, stdin=None, timeout=60):
        calls.append(list(argv))
        return local_shell(argv, stdin=stdin, timeout=timeout)
    return shell


# -- the forms, on samples -----------------------------------------------------------------
def test_qstat_array_entries_are_tasks_numbered_from_0():
    system = GridEngine(FakeShell({'qstat': (0, data('sge/qstat_xml_array_tc2.xml'), '')}))
    jobs = system.statuses(None, 'root')
    assert {k: v.state for k, v in jobs.items()} == {
        '31_0': State.RUNNING, '31_1': State.RUNNING, '31_2': State.PENDING,
        '31_3': State.PENDING}
    assert [listed_keys({'JB_job_number': '5', 'tasks': '1-7:3'})] == [['5_0', '5_3', '5_6']]
    assert listed_keys({'JB_job_number': '5', 'tasks': ''}) == ['5']
    assert split_key('5_0') == ('5', 1) and split_key('5') == ('5', None)


def test_qacct_records_of_an_array_are_its_tasks():
    system = GridEngine(FakeShell({'qacct': (0, data('sge/qacct_array_task_qdel.txt'), '')}))
    text = data('sge/qacct_array_task_qdel.txt')
    job = text.split('jobnumber')[1].split()[0]
    found = system.final_info([f'{job}_{i}' for i in range(4)])
    assert {k: (v.state, v.exitcode) for k, v in found.items()} == {
        f'{job}_0': (State.COMPLETED, 0), f'{job}_1': (State.FAILED, 137),
        f'{job}_2': (State.COMPLETED, 0), f'{job}_3': (State.COMPLETED, 0)}


def test_a_task_is_cancelled_by_its_grid_engine_number():
    shell = FakeShell({'qdel': (0, '', '')})
    GridEngine(shell).cancel(['12_0', '13'])
    assert shell.calls[-1][:3] == ['qdel', '12.1', '13']


def test_max_aj_tasks_is_the_array_limit():
    system = GridEngine(FakeShell({'qconf': (0, 'max_aj_instances 2000\nmax_aj_tasks 500\n', '')}))
    assert system.array_limit() == 500 and system.array_limit() == 500
    assert max_array_tasks(FakeShell({'qconf': (1, '', 'denied')})) == 75000


# -- live ---------------------------------------------------------------------------------
@pytest.mark.sge
def test_a_map_is_one_native_array_and_each_task_runs_its_own_calls(sge):
    """One qsub ``-t 1-5`` for 5 tasks; task i (Grid Engine's i + 1) runs call i: a
    numbering off by one would give a call another's argument, or leave one unrun."""
    calls = []
    with cluster.Executor(**sge) as ex:
        ex.system.shell = counting(calls)
        assert list(ex.map(square, range(5), chunksize=1, timeout=DEADLINE)) == \
            [i * i for i in range(5)]
        qsubs = [argv for argv in calls if argv[0] == 'qsub']
        assert len(qsubs) == 1 and qsubs[0][qsubs[0].index('-t') + 1] == '1-5', qsubs
        assert [job.id.count('_') for job in ex.jobs] == [0] and len(ex.jobs) == 1


@pytest.mark.sge
def test_a_task_deleted_mid_array_fails_only_its_calls(sge):
    with cluster.Executor(**sge, throttle=4) as ex:  # 4 slots, a task each: 2 calls per task
        calls = [(square, 0), (square, 1), (nap, 150), (nap, 0),
                 (square, 4), (square, 5), (square, 6), (square, 8)]
        futures = [ex.submit(fn, arg) for fn, arg in calls]
        killed = futures[2].job
        assert futures[3].job is killed and futures[1].job is not killed
        job, task = split_key(killed.id)
        assert task == 2 and len({f.job.id.split('_')[0] for f in futures}) == 1
        try:
            until(futures[2].running, DEADLINE, f'task {killed.id} running')
            done = subprocess.run(['qdel', f'{job}.{task}'], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        except BaseException:
            ex.system.cancel([killed.id])
            raise
        for future in futures[2:4]:
            with pytest.raises(JobError, match=rf'{killed.id}\) ended failed.*signal 9'):
                future.result(DEADLINE)
        kept = [f.result(DEADLINE) for i, f in enumerate(futures) if i not in (2, 3)]
        assert kept == [0, 1, 16, 25, 36, 64]


@pytest.mark.sge
def test_throttle_is_tc_and_caps_the_running_tasks(sge):
    """throttle=1 over two arrays on 2 slots: ``-tc 1``, and the second array is held
    until the first ended, so never two tasks at once."""
    calls = []
    with cluster.Executor(**sge, throttle=1) as ex:
        ex.system.shell = counting(calls)
        first = ex.map(interval, [1.5, 1.5], chunksize=1, timeout=DEADLINE)
        second = ex.map(interval, [1.5, 1.5], chunksize=1, timeout=DEADLINE)
        intervals = list(first) + list(second)
    qsubs = [argv for argv in calls if argv[0] == 'qsub']
    assert [argv[argv.index('-tc') + 1] for argv in qsubs] == ['1', '1'], qsubs
    assert '-hold_jid' in qsubs[1] or min(s for s, _ in intervals[2:]) >= \
        max(e for _, e in intervals[:2])
    ordered = sorted(intervals)
    assert all(b[0] >= a[1] for a, b in zip(ordered, ordered[1:])), intervals


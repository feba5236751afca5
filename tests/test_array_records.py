"""Executor arrays are durable (issue 14): each submitted array writes a record with its
map from task indices to calls; a future's ``.job.id`` (``123_4``) attaches from a new
process after its driver was killed; ``cluster resubmit --failed`` runs only the failed
tasks again. Against the real Slurm and a remote profile."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time

import pytest

import cluster
from cluster.batch import State
from cluster.job import records
from cluster.job.recorded_array import RecordedArray, split_task_id

from array_work import attempt_of
from test_cli_jobs import cluster_cmd
from requeue_helpers import text_of
from support import first_line_then_kill, until
from test_requeue import slurm_cpus  # noqa: F401 - slurm_cpus: a fixture

from cluster.job import Job

SLURM = pytest.param('slurm', marks=pytest.mark.slurm)
REMOTE = pytest.param('remote-slurm', marks=[pytest.mark.slurm, pytest.mark.remote])

DRIVER = textwrap.dedent('''
    import os, signal, sys, cluster

    def value(x):
        if x == 4:
            raise ValueError(f'no good: {x}')
        return {'x': x, 'sq': x * x}

    kw = eval(sys.argv[1])
    ex = cluster.Executor(**kw)
    futures = [ex.submit(value, i) for i in range(int(sys.argv[2]))]
    print(' '.join(f.job.id for f in futures), flush=True)
    signal.pause()                       # killed here, its tasks queued or running
''')

ATTACHER = textwrap.dedent('''
    import json, sys, cluster
    out = []
    for task_id in sys.argv[1].split():
        try:
            out.append(['ok', cluster.attach(task_id).get(timeout=900)])
        except Exception as exc:
            out.append(['error', type(exc).__name__, str(exc),
                        getattr(exc, 'remote_traceback', '')])
    print(json.dumps(out))
''')


# the map and its record ---------------------------------------------------------------
def test_a_call_map_is_ranges_whatever_its_size():
    array = records.call_map([3] * 3333 + [1], first_call=50)
    assert array['runs'] == [[0, 3332, 50, 3], [3333, 3333, 10049, 1]]
    assert array['calls'] == 10000 and array['tasks'] == 3334
    assert records.calls_of(array, 0) == range(50, 53)
    assert records.calls_of(array, 3333) == range(10049, 10050)
    with pytest.raises(records.RecordError, match='no task 3334'):
        records.calls_of(array, 3334)


def test_a_record_with_a_broken_map_is_refused(tmp_path):
    record = records.new(id='77', system='slurm', name='a', kind='array', files={},
                         target={}, outfile='o', errfile='e',
                         array=records.call_map([2, 2]))
    assert record['version'] == 2  # arrays came with version 2; a job's record stays 1
    assert records.new(id='78', system='slurm', name='b', kind='command', files={},
                       target={}, outfile='o', errfile='e')['version'] == 1
    broken = json.loads(json.dumps(record))
    broken['array']['runs'][0][2] = 5  # its calls no longer follow on
    with pytest.raises(records.RecordError, match='corrupt: its array map'):
        records.check(broken, 'the record')
    old = dict(record, version=1)  # a version-1 record cannot be an array
    with pytest.raises(records.RecordError, match="kind 'array'"):
        records.check(old, 'the record')


def test_task_ids_parse():
    assert split_task_id('123_4') == ('123', 4)
    assert split_task_id('123') is None and split_task_id('123_[1-3]') is None


@pytest.mark.parametrize('target', [SLURM, REMOTE], indirect=True)
def test_a_submitted_array_writes_a_private_record_of_its_calls(target, in_tmp):
    ex = cluster.Executor(cores=1, mem='100MB', **target)
    values = list(ex.map(abs, range(-7, 0), chunksize=3))
    assert values == [7, 6, 5, 4, 3, 2, 1]
    [job] = ex.jobs
    [record] = records.find(job.id)
    path = os.path.join(records.state_dir(), record['key'] + '.json')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert record['kind'] == 'array' and record['system'] == 'slurm'
    assert record['array'] == {'tasks': 3, 'calls': 7, 'first_call': 0,
                               'runs': [[0, 1, 0, 3], [2, 2, 6, 1]]}
    assert record['options']['mem'] and record['files']['name'] == job.name
    assert record['submitted'] <= time.time()
    if 'profile' in target:  # reached again over SSH by its address
        assert record['remote']['address'] and record['profile'] == target['profile']
    else:
        assert record['remote'] is None
    ex.shutdown()  # the tasks' files are cleaned: the record goes with them
    assert records.find(job.id) == []
    if 'profile' in target:  # the remote job's directory goes too (we see it: same host)
        assert not os.path.exists(job.target.directory), os.listdir(job.target.directory)


# attach a killed driver's futures -----------------------------------------------------
def _submit_and_kill(kw: dict, count: int) -> list:
    line = first_line_then_kill(DRIVER, [repr(kw), str(count)])
    ids = line.split()
    assert len(ids) == count, line
    return ids


@pytest.mark.waits
@pytest.mark.parametrize('target', [SLURM, REMOTE], indirect=True)
def test_a_killed_driver_s_futures_attach_by_their_job_id(target, rundir, in_tmp):
    ids = _submit_and_kill(dict(target, mem='100MB', throttle=6), 6)  # a call a task
    assert all(split_task_id(i) for i in ids) and len({i.split('_')[0] for i in ids}) == 1
    start = time.monotonic()
    done = subprocess.run([sys.executable, '-c', ATTACHER, ' '.join(ids)],
                          capture_output=True, text=True, timeout=1800)
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [a[1] for a in answer if a[0] == 'ok'] == [{'x': x, 'sq': x * x}
                                                      for x in (0, 1, 2, 3, 5)]
    failed = answer[4]
    assert failed[:3] == ['error', 'ValueError', 'no good: 4'] and 'in value' in failed[3]
    got = cluster_cmd('get', ids[2])
    assert got.returncode == 0 and got.stdout == "{'x': 2, 'sq': 4}\n", got.stderr
    bad = cluster_cmd('get', ids[4])
    assert bad.returncode == 1 and 'ValueError: no good: 4' in bad.stderr
    whole = cluster_cmd('get', ids[0].split('_')[0], '--call', '3')
    assert whole.returncode == 0 and whole.stdout == "{'x': 3, 'sq': 9}\n", whole.stderr
    listed = cluster_cmd('jobs')
    [row] = [r for r in listed.stdout.splitlines() if r.startswith(ids[0].split('_')[0] + ' ')]
    assert ' failed ' in f'{row} ', row  # every task ended 0, but call 4 raised: not completed
    print(f'\n{target}: attach and get 6 futures of a killed driver {took:.1f} s')


# resubmit --failed -------------------------------------------------------------------
FLAKY = textwrap.dedent('''
    import os, sys, time, cluster

    def flaky(x, flag):
        if os.path.exists(flag):
            return x * 100
        if x in (1, 3):
            raise RuntimeError(f'flaky {x}')
        if x == 5:
            time.sleep(600)          # cancelled while it runs
        return x

    kw = eval(sys.argv[2])
    ex = cluster.Executor(cores=1, mem='100MB', throttle=6, **kw)  # a call a task
    futures = [ex.submit(flaky, i, sys.argv[1]) for i in range(6)]
    print(' '.join(f.job.id for f in futures), flush=True)
''')


@pytest.mark.waits
@pytest.mark.parametrize('target', [SLURM, REMOTE], indirect=True)
def test_resubmit_failed_runs_only_the_failed_and_cancelled_tasks(target, rundir, in_tmp):
    flag = rundir / 'second-time'  # where the (remote) tasks see it
    done = subprocess.run([sys.executable, '-c', FLAKY, str(flag), repr(target)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    array_id = ids[0].split('_')[0]
    old = cluster.attach(array_id)
    assert isinstance(old, RecordedArray)
    deadline = time.monotonic() + 600
    sleeper = cluster.attach(ids[5])
    while sleeper.state is not State.RUNNING:
        assert time.monotonic() < deadline, 'task 5 never ran'
        time.sleep(0.5)
    assert cluster_cmd('cancel', ids[5]).returncode == 0
    assert not old.wait(timeout=600)
    assert old.failed_tasks() == [1, 3, 5]
    flag.write_text('rerun')
    again = cluster_cmd('resubmit', '--failed', array_id)
    assert again.returncode == 0, again.stderr
    new_id = again.stdout.strip()
    assert new_id.isdigit() and new_id != array_id
    got = cluster_cmd('get', new_id, '--timeout', '600')
    assert got.returncode == 0 and got.stdout == '[100, 300, 500]\n', got.stderr
    [new] = records.find(new_id)
    [before] = records.find(array_id)
    assert new['links'] == {'resubmit_of': before['key'], 'resubmitted_as': [],
                            'tasks': [1, 3, 5]}
    assert before['links']['resubmitted_as'] == [new['key']]
    assert new['array']['tasks'] == 3 and new['name'] != before['name']
    with pytest.raises(RuntimeError, match='flaky 3'):  # the old outputs are kept
        cluster.attach(ids[3]).get()
    assert cluster.attach(ids[2]).get() == 2
    none = cluster_cmd('resubmit', '--failed', new_id)
    assert none.returncode != 0 and 'no failed task' in none.stderr


# requeue ----------------------------------------------------------------------------------
def test_requeue_is_refused_where_the_system_cannot(in_tmp):
    from cluster.run.errors import OptionError
    with pytest.raises(OptionError, match='local cannot requeue.*can: '):
        cluster.Executor(qtype='local', requeue=True)
    with pytest.raises(OptionError, match='array tasks of sge are not requeued.*whose are: slurm'):
        cluster.Executor(qtype='sge', requeue=True)


@pytest.mark.slurm
@pytest.mark.alone
def test_a_preempted_array_task_reruns_its_calls_and_gives_their_values(slurm_cpus, in_tmp):
    cpus = slurm_cpus
    ex = cluster.Executor(qtype='slurm', cores=cpus, requeue=True, max_requeues=2,
                          time='00:10:00')
    futures = [ex.submit(attempt_of, 7, 600)]
    task_id = futures[0].job.id  # sent now
    [job] = ex.jobs
    script = open(job.files.submission).read()
    assert '#SBATCH --requeue\n' in script and '--signal' not in script
    until(lambda: 'call 7 attempt 0' in text_of(job.files.outfile), 600, 'the first attempt')
    preemptor = Job('true', qtype='slurm', partition='high', cores=cpus, name='preemptor',
                    filedir=str(in_tmp)).submit()
    try:
        assert futures[0].result(timeout=600) == {'x': 7, 'attempt': 1}
    finally:
        if not preemptor.done:
            preemptor.cancel()
    attached = cluster.attach(task_id)
    assert attached.get() == {'x': 7, 'attempt': 1} and attached.attempts(0) == 2
    assert attached.info.state is State.COMPLETED
    assert 'call 7 attempt 1' in text_of(job.files.outfile)  # both attempts' output kept
    ex.shutdown()
    assert not [p for p in os.listdir(in_tmp) if p.startswith(job.name + '.cluster.task')]

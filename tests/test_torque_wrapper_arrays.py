"""Facts of Slurm's Torque wrappers (slurm-wlm-torque over the real test Slurm) that
torque's job arrays build on (cluster/batch/_torque_arrays.py), and the array parser on
the recorded outputs.

The live tests drive qsub/qstat/qdel themselves (no package code). With
RECORD_TORQUE_SAMPLES=1 they write the raw outputs to tests/data/torque_wrapper/:

    RECORD_TORQUE_SAMPLES=1 CLUSTER_TEST_STRICT=1 .venv/bin/python -m pytest -q \
        tests/test_torque_wrapper_arrays.py
"""
from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Dict, List

import pytest
from batch_helpers import FakeShell
from conftest import _require_slurm
from support import until

from cluster.batch._arrays import AFTER_ANY_OPTION, ARRAY_OPTION
from cluster.batch._torque_arrays import WrapperArrays
from cluster.batch.base import JobInfo, State
from cluster.batch.torque import Torque, parse_qstat_f
from cluster.script import JobFiles

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / 'data' / 'torque_wrapper'
#: what would name an array task in a qstat attribute (``123_4``, ``123[4]``, array...)
NAMES_A_TASK = re.compile(r'\d_\d|\[\d|array', re.I)
QUEUE_WAIT = 300  # our tasks may wait behind others' jobs on the 2 shared cores


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and done.returncode:
        raise AssertionError(f'{argv} exited {done.returncode}: {done.stdout}{done.stderr}')
    return done


def record(name: str, text: str) -> None:
    if os.environ.get('RECORD_TORQUE_SAMPLES'):
        SAMPLES.mkdir(parents=True, exist_ok=True)
        (SAMPLES / name).write_text(text)


def ours(listing: str, name: str) -> List[Dict[str, str]]:
    return [r for r in parse_qstat_f(listing) if r.get('Job_Name') == name]


def tasks(array: str) -> Dict[str, str]:
    """squeue's view, one line per task: 'A_i' -> state."""
    out = sh('squeue', '-h', '-r', '-t', 'all', '-j', array, '-o', '%i %T', check=False).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


@pytest.fixture
def arrays(tmp_path, monkeypatch):
    _require_slurm('torque')
    monkeypatch.chdir(tmp_path)
    submitted: List[str] = []
    yield submitted
    if submitted:
        sh('scancel', *submitted, check=False)


def qsub(arrays, tmp_path, name, *args):
    out = sh('qsub', '-N', name, '-o', f'{tmp_path}/o.%A_%a', '-e', f'{tmp_path}/e.%A_%a',
             *args).stdout
    assert re.fullmatch(r'\d+\n', out), f'qsub printed {out!r}'  # the array's id, bare
    arrays.append(out.strip())
    return out.strip()


@pytest.mark.torque
def test_qsub_t_is_sbatch_array_and_qdel_of_a_task_cancels_the_whole_array(arrays, tmp_path):
    script = tmp_path / 'job.sh'
    script.write_text('#!/bin/bash\ntrue\n')
    lines = [sh('qsub', '--sbatchline', '-t', spec, str(script)).stdout for spec in
             ('0-5%2', '0-5')]
    assert "--array='0-5%2'" in lines[0] and "--array='0-5'" in lines[1], lines
    name = f'held-{uuid.uuid4().hex[:8]}'  # a name of this run only, as the package's are
    array = qsub(arrays, tmp_path, name, '-h', '-t', '0-5%2', str(script))
    assert sorted(tasks(array)) == [f'{array}_{i}' for i in range(6)]
    throttle = sh('squeue', '-h', '-j', array, '-o', '%K').stdout.strip()
    assert throttle == '0-5%2'
    mine = ours(sh('qstat', '-f').stdout, name)
    record('qstat_f_held.txt', _text(mine))
    assert [(r['Job Id'], r['job_state']) for r in mine] == [(array, 'Q')]  # one record
    assert not any(NAMES_A_TASK.search(f'{k} = {v}') for r in mine for k, v in r.items())
    one = sh('qstat', '-f', f'{array}_1', check=False)
    assert (one.returncode, one.stdout) == (153, '')  # qstat cannot name a task
    sh('qdel', f'{array}_1')
    assert until(lambda: set(tasks(array).values()) == {'CANCELLED'} or not tasks(array),
                 30, 'the array cancelled')  # every task, not just index 1


@pytest.mark.torque
def test_tasks_get_their_own_job_ids_no_index_and_slurms_variable(arrays, tmp_path):
    go = tmp_path / 'go'
    script = tmp_path / 'task.sh'
    script.write_text('#!/bin/bash\n'
                      'echo "index=$SLURM_ARRAY_TASK_ID pbs=${PBS_ARRAYID-unset} '
                      'job=$SLURM_JOB_ID"\n'
                      f'for i in $(seq 6000); do [ -e {go} ] && break; sleep 0.1; done\n')
    name = f'running-{uuid.uuid4().hex[:8]}'
    array = qsub(arrays, tmp_path, name, '-t', '0-2%2', str(script))
    until(lambda: sorted(tasks(array).values()) == ['PENDING', 'RUNNING', 'RUNNING'],
          QUEUE_WAIT, 'two tasks running, one pending')
    running = ours(sh('qstat', '-f').stdout, name)
    record('qstat_f_running.txt', _text(running))
    states = sorted((r['Job Id'] == array, r['job_state']) for r in running)
    assert states == [(False, 'R'), (False, 'R'), (True, 'Q')], running  # own ids; rest Q
    assert not any(NAMES_A_TASK.search(f'{k} = {v}') for r in running for k, v in r.items())
    go.write_text('')
    finished: List[Dict[str, str]] = []

    def seen_finished():
        records = ours(sh('qstat', '-f').stdout, name)
        if any(r['job_state'] == 'C' for r in records):
            finished[:] = records
        return not any(state in ('PENDING', 'RUNNING') for state in tasks(array).values())
    until(seen_finished, QUEUE_WAIT, 'the array over')
    record('qstat_f_finished.txt', _text(finished))
    assert finished and not any('exit_status' in r for r in finished), finished
    for i in range(3):
        out = (tmp_path / f'o.{array}_{i}').read_text()
        assert re.fullmatch(rf'index={i} pbs=unset job=\d+\n', out), out
    def accounted():
        rows = sh('sacct', '-n', '-X', '-P', '-j', array, '-o', 'JobID,State,ExitCode').stdout
        return sorted(rows.split()) if rows.count('COMPLETED') == 3 else None
    rows = until(accounted, 60, 'every task in sacct')
    assert rows == [f'{array}_{i}|COMPLETED|0:0' for i in range(3)]  # sacct names each


def _text(records: List[Dict[str, str]]) -> str:
    return ''.join('Job Id:\t' + r['Job Id'] + '\n' + ''.join(
        f'\t{k} = {v}\n' for k, v in r.items() if k != 'Job Id') + '\n' for r in records)


# --- the parser on the recorded outputs ----------------------------------------------------
def sample(name: str) -> List[Dict[str, str]]:
    return parse_qstat_f((SAMPLES / name).read_text())


def test_recorded_array_is_followed_task_by_task_through_the_accounting():
    running = sample('qstat_f_running.txt')
    array = next(r['Job Id'] for r in running if r['job_state'] == 'Q')
    asked: List[List[str]] = []
    answer = {f'{array}_0': JobInfo(f'{array}_0', State.RUNNING),
              f'{array}_1': JobInfo(f'{array}_1', State.RUNNING)}

    def sacct(ids):
        asked.append(list(ids))
        return {i: v for i, v in answer.items() if i in ids}
    followed = WrapperArrays(sacct)
    followed.add(array, running[0]['Job_Name'], 3)
    other = {'Job Id': '1', 'Job_Name': 'else', 'job_state': 'R'}
    rest, found = followed.follow(running + [other])
    assert rest == [other] and len(asked) == 1
    assert {i: v.state for i, v in found.items()} == {
        f'{array}_0': State.RUNNING, f'{array}_1': State.RUNNING, f'{array}_2': State.PENDING}
    followed.follow(running)
    assert len(asked) == 1  # nothing changed in qstat: no accounting asked
    answer[f'{array}_0'] = JobInfo(f'{array}_0', State.COMPLETED, exitcode=0)
    answer[f'{array}_2'] = JobInfo(f'{array}_2', State.RUNNING)
    finished = sample('qstat_f_finished.txt')
    _, found = followed.follow(finished)
    assert len(asked) == 2 and found[f'{array}_0'].state is State.COMPLETED
    assert followed.follow([other]) == ([other], {})  # gone from qstat: left to accounting


# --- the Torque back end on the wrappers, through a fake runner ----------------------------
def wrapper(runner) -> Torque:
    system = Torque(runner)
    system.backoff, system._flavour = 0, 'wrapper'
    return system


def test_array_submit_is_qsub_t_with_afterok_and_afterany(tmp_path):
    files = JobFiles(str(tmp_path), 'job', qtype='torque')
    runner = FakeShell({'qsub': (0, '700\n', '')})
    system = wrapper(runner)
    assert system.array_variable == 'SLURM_ARRAY_TASK_ID'
    job_id = system.submit(files, ['690_1'], {ARRAY_OPTION: (4, 2), AFTER_ANY_OPTION: ['699']})
    argv = runner.calls[0]
    assert job_id == '700' and argv[argv.index('-t') + 1] == '0-4%2'
    assert argv[argv.index('-W') + 1] == 'depend=afterok:690_1,afterany:699'
    assert set(system._arrays.arrays['700'].tasks) == {f'700_{i}' for i in range(5)}


def test_task_cancel_is_scancel_and_a_listing_by_id_keeps_the_arrays(tmp_path):
    files = JobFiles(str(tmp_path), 'job', qtype='torque')
    runner = FakeShell({'qsub': (0, '700\n', ''), 'scancel': (0, '', ''), 'qdel': (0, '', ''),
                        'qstat': (0, 'Job Id:\t5\n\tJob_Name = other\n\tjob_state = R\n', '')})
    system = wrapper(runner)
    system.submit(files, [], {ARRAY_OPTION: (2, None)})
    system.cancel(['700_1', '5'])
    assert ['scancel', '700_1'] in runner.calls and ['qdel', '5'] in runner.calls
    assert set(system.statuses(['5'])) == {'5'} and '700' in system._arrays.arrays
    assert ['qstat', '-f', '5'] in runner.calls
    assert system.statuses(['700_1']) == {}  # a full listing without the array: left out
    assert ['qstat', '-f'] in runner.calls and '700' not in system._arrays.arrays


def test_a_task_the_accounting_does_not_know_is_pending_or_over_never_running():
    for name, state in (('qstat_f_running.txt', State.PENDING),
                        ('qstat_f_finished.txt', State.UNKNOWN)):
        records = sample(name)
        followed = WrapperArrays(lambda ids: {})
        followed.add('1', records[0]['Job_Name'], 3)
        _, found = followed.follow(records)
        assert {info.state for info in found.values()} == {state}, name


def test_a_cancelled_pending_task_without_accounting_is_cancelled(tmp_path):
    files = JobFiles(str(tmp_path), 'job', qtype='torque')
    system = wrapper(FakeShell({'qsub': (0, '700\n', ''), 'scancel': (0, '', ''),
                                'sacct': (0, '', '')}))
    system.submit(files, [], {ARRAY_OPTION: (0, None)})
    name = system._arrays.arrays['700'].name
    system.shell.answers['qstat'] = (0, f'Job Id:\t700\n\tJob_Name = {name}\n'
                                        f'\tjob_state = C\n', '')
    assert system.statuses(['700_0'])['700_0'].state is State.UNKNOWN
    system.cancel(['700_0'])
    info = system.statuses(['700_0'])['700_0']
    assert (info.state, info.reason) == (State.CANCELLED, 'cancelled with scancel')


def test_a_task_of_an_array_submitted_elsewhere_is_followed_once_tracked():
    runner = FakeShell({'qstat': (0, 'Job Id:\t800\n\tJob_Name = theirs\n\tjob_state = Q\n'
                                     'Job Id:\t5\n\tJob_Name = other\n\tjob_state = R\n', ''),
                        'sacct': (0, '', '')})
    system = wrapper(runner)
    assert '800_1' not in system.statuses(None)
    system.follow('800_1')  # what Watcher.track tells the system
    listing = system.statuses(None)
    assert listing['800_1'].state is State.PENDING and '800' not in listing and '5' in listing

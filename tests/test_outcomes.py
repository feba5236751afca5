"""Outcomes are true (issue 9, item 2): a job killed by a signal, a time limit or a failed
dependency is never a success, on every back end, through the API and the CLI alike.
Live on the real Slurm and on Slurm's real Torque wrappers."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

import cluster
from cluster.batch import State
from cluster.run.errors import JobError, SubmissionError
from conftest import _require_slurm
from support import end_time_now

LIVE = [pytest.param('slurm', marks=pytest.mark.slurm),
        pytest.param('torque', marks=pytest.mark.torque)]


@pytest.fixture(params=LIVE)
def live(request):
    """slurm or torque (the wrappers), required to be running."""
    _require_slurm(request.param)
    return request.param


def _until(condition, timeout: float = 120, what: str = 'condition'):
    """Poll ``condition`` until it is true (bounded); return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f'{what} not reached in {timeout} s')


def _slurm_id(job) -> str:
    return str(job.id).split('.', 1)[0]


def _running(job) -> bool:
    return job.state is State.RUNNING


def _sleeper() -> int:
    time.sleep(300)
    return 0


def test_cancelled_while_running_is_not_success(live, in_tmp):
    command = cluster.submit('sleep 300', qtype=live)
    function = cluster.submit(_sleeper, qtype=live)
    for job in (command, function):
        _until(lambda: _running(job), what=f'{job.name} running')
        subprocess.run(['scancel', _slurm_id(job)], check=True)  # from outside this API
    code, _, _ = command.get(timeout=120)
    assert code == 143  # 128 + SIGTERM, as the job script recorded it
    assert command.info.state is State.CANCELLED
    with pytest.raises(JobError, match='ended cancelled'):
        function.get(timeout=120)


@pytest.mark.waits
def test_time_limit_is_a_timeout_not_success(live, in_tmp):
    command = cluster.submit('sleep 300', qtype=live, time='00:01:00')
    function = cluster.submit(_sleeper, qtype=live, time='00:01:00')
    for job in (command, function):  # Slurm's own limit, reached now rather than in a minute
        _until(lambda: _running(job), what=f'{job.name} running')
        end_time_now(_slurm_id(job))
    code, _, _ = command.get(timeout=300)
    assert code == 143 and command.info.state is State.TIMEOUT
    with pytest.raises(JobError, match='ended timeout'):
        function.get(timeout=300)


def _gate_command(gate, code: int) -> str:
    return f'while [ ! -e {gate} ]; do sleep 0.1; done; exit {code}'


def _never_called() -> str:
    return 'ran'


@pytest.mark.waits
@pytest.mark.parametrize('backend', ['local', *LIVE])
def test_dependent_of_a_failed_job_is_cancelled_everywhere(backend, in_tmp):
    if backend != 'local':
        _require_slurm(backend)
    gate = in_tmp / 'gate'
    parent = cluster.submit(_gate_command(gate, 3), qtype=backend, name='parent')
    child = cluster.submit('echo never', qtype=backend, depends=[parent])
    function = cluster.submit(_never_called, qtype=backend, depends=[parent])
    gate.touch()
    assert parent.get(timeout=120)[0] == 3
    code, out, _ = child.get(timeout=120)
    assert code is None and out == ''  # never ran: no code at all, and never 0
    assert child.info.state is State.CANCELLED
    assert f'dependency {parent.name} ({parent.id}) ended failed with exit code 3' \
        in child.info.reason
    with pytest.raises(JobError, match=rf'ended cancelled: dependency {parent.name} '):
        function.get(timeout=120)


@pytest.mark.parametrize('backend', ['local', *LIVE])
def test_cancelling_a_dependent_does_not_wait_for_its_running_parent(backend, in_tmp):
    """The reason of a cancelled dependent is looked up without waiting for the parent."""
    if backend != 'local':
        _require_slurm(backend)
    gate = in_tmp / 'gate'
    parent = cluster.submit(_gate_command(gate, 0), qtype=backend, name='parent')
    child = cluster.submit('echo never', qtype=backend, depends=[parent])
    try:
        _until(lambda: child.state is State.PENDING, what='the dependent pending')
        child.cancel()
        started = time.monotonic()
        assert child.wait(timeout=60) is False
        assert time.monotonic() - started < 30  # not held until the parent ends
        assert child.info.state is State.CANCELLED
    finally:
        gate.touch()
    assert parent.get(timeout=120)[0] == 0


def test_a_reasonless_end_is_explained_without_waiting_for_a_running_dependency(in_tmp):
    """A scheduler that gives no reason (a real Torque's qdel) must not make wait() wait
    for a dependency that is still running."""
    gate = in_tmp / 'gate'
    parent = cluster.submit(_gate_command(gate, 0), qtype='local', name='parent')
    child = cluster.Job('echo never', qtype='local', depends=[parent])
    answer = []
    explain = threading.Thread(target=lambda: answer.append(
        child._explained(cluster.batch.JobInfo('7', State.CANCELLED))), daemon=True)
    try:
        explain.start()
        explain.join(10)
        assert not explain.is_alive(), 'waited for the running dependency'
        assert answer[0].reason is None
    finally:
        gate.touch()
    assert parent.get(timeout=60)[0] == 0


@pytest.mark.slurm
def test_job_that_can_never_start_fails_with_the_reason(in_tmp, request):
    _require_slurm('slurm')
    job = cluster.submit('echo never', qtype='slurm', cores=16)  # the node has 2
    request.addfinalizer(lambda: subprocess.run(['scancel', job.id]))  # even on failure
    code, _, _ = job.get(timeout=60)
    assert code is None and job.info.state is State.FAILED
    assert 'PartitionConfig' in job.info.reason and 'never start' in job.info.reason
    squeue = subprocess.run(['squeue', '-h', '-t', 'all', '-j', job.id, '-o', '%T'],
                            capture_output=True, text=True).stdout.strip()
    assert squeue in ('', 'CANCELLED')  # not left pending forever


def test_local_refuses_more_cores_than_it_has_at_submission(in_tmp):
    job = cluster.submit('echo hi', qtype='local', cores=10_000)
    with pytest.raises(SubmissionError, match='10000 cores'):
        job.get(timeout=30)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'cluster.job.cli', *args], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ))


@pytest.mark.parametrize('backend', ['local', *LIVE])
@pytest.mark.parametrize('job_id', ['999999', 'abc'])
def test_cli_reports_an_id_no_batch_system_knows_as_unknown(backend, job_id):
    if backend != 'local':
        _require_slurm(backend)
    result = _cli('wait', '--qtype', backend, job_id)
    assert result.returncode == 1
    assert result.stdout.split() == [job_id, 'unknown', 'exit=None']
    assert 'sacct' not in result.stderr and 'failed' not in result.stdout


@pytest.mark.torque
def test_cli_shows_a_failed_torque_wrapper_job_as_failed(in_tmp):
    _require_slurm('torque')
    gate = in_tmp / 'gate'
    job = cluster.submit(_gate_command(gate, 3), qtype='torque')
    gate.touch()

    def ended_line():
        lines = [line.split() for line in _cli('queue', '--qtype', 'torque').stdout
                 .splitlines() if line.split()[:1] == [job.id]]
        return lines and lines[0][1] not in ('pending', 'running') and lines[0]
    line = _until(ended_line, what='the job ended in cluster queue')
    assert line[1:3] == ['failed', '3']
    waited = _cli('wait', '--qtype', 'torque', job.id)
    assert waited.stdout.split() == [job.id, 'failed', 'exit=3'] and waited.returncode == 1
    assert job.get(timeout=60)[0] == 3

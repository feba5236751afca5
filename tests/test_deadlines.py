"""Timeouts are deadlines for the whole call, and decided jobs cost no more polls
(issue 9, item 8). Live on the real Slurm where a batch system is involved."""
from __future__ import annotations

import os
import stat
import time

import pytest

import cluster
from cluster import jobqueue, queue
from cluster.batch import JobInfo, State
from conftest import _require_slurm
from test_queue import ScriptedSystem


@pytest.fixture(params=['local', pytest.param('slurm', marks=pytest.mark.slurm)])
def backend(request):
    if request.param == 'slurm':
        _require_slurm('slurm')
    return request.param


def test_wait_on_many_jobs_keeps_one_deadline(backend, in_tmp):
    # the first ends within the timeout: a per-job timeout would give the second 2 s more
    jobs = [cluster.submit(f'sleep {seconds}', qtype=backend) for seconds in (1.2, 30)]
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        cluster.wait(jobs, timeout=2)
    assert time.monotonic() - started < 2.8  # the whole call, not 2 s per job
    for job in jobs:
        job.cancel()


def test_job_wait_and_get_take_a_timeout(backend, in_tmp):
    job = cluster.submit('sleep 30', qtype=backend)
    for call in (job.wait, job.get, job.get_stdout, job.get_exitcode):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            call(timeout=0.5)
        assert time.monotonic() - started < 1.3
    job.cancel()


@pytest.mark.slurm
def test_deadline_holds_behind_a_hung_sbatch(in_tmp, monkeypatch):
    """The real sbatch, behind a wrapper that waits for a gate: submission hangs."""
    _require_slurm('slurm')
    import shutil
    real = shutil.which('sbatch')
    gate = in_tmp / 'gate'
    bindir = in_tmp / 'bin'
    bindir.mkdir()
    wrapper = bindir / 'sbatch'
    wrapper.write_text(f'#!/bin/bash\nwhile [ ! -e {gate} ]; do sleep 0.05; done\n'
                       f'exec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv('PATH', f'{bindir}:{os.environ["PATH"]}')
    job = cluster.submit('echo landed', qtype='slurm')
    for call in (job.wait, job.get):
        started = time.monotonic()
        with pytest.raises(TimeoutError, match='still being submitted'):
            call(timeout=0.5)
        assert time.monotonic() - started < 1.3
    gate.touch()
    assert job.get(timeout=120) == (0, 'landed\n', '')


def _gated(command: str, bindir, gate) -> None:
    """Put a ``command`` on PATH that waits for ``gate`` to exist, then runs the real one."""
    import shutil
    real = shutil.which(command)
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / command
    wrapper.write_text(f'#!/bin/bash\nwhile [ ! -e {gate} ]; do sleep 0.05; done\n'
                       f'exec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)


@pytest.mark.slurm
def test_deadline_holds_behind_a_hung_status_command(in_tmp, monkeypatch):
    """The real squeue, behind a wrapper that waits for a gate: the poll hangs."""
    _require_slurm('slurm')
    gate = in_tmp / 'gate'
    job = cluster.submit('sleep 30', qtype='slurm')
    assert job.id
    _gated('squeue', in_tmp / 'bin', gate)
    monkeypatch.setenv('PATH', f'{in_tmp / "bin"}:{os.environ["PATH"]}')
    try:
        for call in (job.wait, job.get, lambda timeout: cluster.wait([job], timeout)):
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                call(timeout=0.5)
            assert time.monotonic() - started < 1.3  # not held by the hung squeue
    finally:
        gate.touch()
    job.cancel()
    assert job.wait(timeout=120) is False  # the poll's answer arrives once it can


@pytest.mark.slurm
def test_a_finished_job_is_never_polled_again(in_tmp, monkeypatch):
    _require_slurm('slurm')
    job = cluster.submit('true', qtype='slurm')
    assert job.wait(timeout=120)
    watcher = queue.watcher(job.system)
    monkeypatch.setattr(watcher, 'interval', 0)  # every call would poll if it asked
    polls = watcher.polls
    for _ in range(5):
        assert job.wait()
        assert job.get(timeout=5)[0] == 0
        assert watcher.wait([job.id])[job.id].state is State.COMPLETED
        assert job.state is State.COMPLETED and job.done
    assert watcher.polls == polls  # 5 waits made 5 status calls before


def test_watcher_polls_only_open_jobs(tmp_path):
    done = {str(i): JobInfo(str(i), State.COMPLETED, 0) for i in range(200)}
    system = ScriptedSystem([done])
    watcher = queue.Watcher(system, 'me', interval=0)
    for job_id in done:
        watcher.track(job_id)
    watcher.wait(list(done), timeout=10)
    watcher.track('new')
    assert watcher.open_ids() == ['new']
    calls = system.status_calls
    watcher.wait(list(done), timeout=10)  # decided: no poll, however many
    assert system.status_calls == calls
    assert watcher.info('7').state is State.COMPLETED and system.status_calls == calls


def test_job_info_is_current_after_waiting_elsewhere(backend, in_tmp):
    gate = in_tmp / 'gate'
    job = cluster.submit(f'while [ ! -e {gate} ]; do sleep 0.05; done', qtype=backend)
    assert job.info.state in (State.PENDING, State.RUNNING)
    gate.touch()
    queue.Queue(qtype=backend).wait([job.id], timeout=120)  # by id, not through the Job
    assert job.info.state is State.COMPLETED and job.info.exitcode == 0


def _fds() -> int:
    return len(os.listdir('/proc/self/fd'))


def test_jobqueues_close_their_wake_pipes():
    before = _fds()
    for _ in range(20):
        jobqueue.JobQueue(cores=1).shutdown()
    assert _fds() == before  # 40 leaked before (two pipe ends per queue)
    queue_ = jobqueue.JobQueue(cores=1)
    queue_.restart()
    assert queue_.get(queue_.add(abs, args=(-2,)), timeout=30) == 2
    queue_.shutdown()

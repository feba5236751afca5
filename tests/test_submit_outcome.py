"""Exactly-once submission against real faults (issue 11, items 1, 4 and 7): a submit
command that reports a timeout after Slurm took the job, a frozen slurmctld during
submissions, a driver SIGKILLed where a dependent of a failed job is submitted, and
the log lines an outage leaves."""
from __future__ import annotations

import getpass
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from typing import Dict, Iterator, List

import pytest

import cluster
from cluster.batch import State
from cluster.batch.slurm import Slurm
from conftest import require, slurm_ready

PIDFILE = '/run/slurm/slurmctld.pid'
TIMEOUT_MESSAGE = ('sbatch: error: Batch job submission failed: '
                   'Socket timed out on send/recv operation')


def _require(qtype: str) -> None:
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    if qtype == 'torque':
        require('the Torque wrappers', bool(shutil.which('qsub')),
                'bash tests/cluster/slurm_up.sh (package slurm-wlm-torque)')


def _wait_until(condition, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f'not within {timeout} s: {what}')


def accounted(prefix: str) -> Dict[str, List[str]]:
    """sacct's job ids by job name, for the names starting with ``prefix``."""
    out = subprocess.run(['sacct', '-X', '-n', '-P', '-o', 'JobID,JobName', '-S', 'now-1days'],
                         capture_output=True, text=True, check=True).stdout
    rows: Dict[str, List[str]] = {}
    for line in out.splitlines():
        job_id, _, name = line.partition('|')
        if name.startswith(prefix):
            rows.setdefault(name, []).append(job_id)
    return rows


def queued(prefix: str) -> Dict[str, str]:
    """squeue's 'state reason' by job id, for the job names starting with ``prefix``."""
    out = subprocess.run(['squeue', '-h', '-t', 'all', '-o', '%i|%j|%T|%r'],
                         capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        job_id, name, state, reason = line.split('|', 3)
        if name.startswith(prefix):
            found[job_id] = f'{state} {reason}'
    return found


def write_program(directory, name: str, text: str) -> str:
    path = os.path.join(str(directory), name)
    with open(path, 'w') as handle:
        handle.write('#!/bin/bash\n' + text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def frozen_slurmctld() -> Iterator[dict]:
    """freeze()/thaw() the real slurmctld with SIGSTOP/SIGCONT; always thawed at the end."""
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    if os.geteuid() != 0:
        require('root (to stop slurmctld)', False, 'run the tests as root')
    pid = int(open(PIDFILE).read())
    control = {'freeze': lambda: os.kill(pid, signal.SIGSTOP),
               'thaw': lambda: os.kill(pid, signal.SIGCONT)}
    try:
        yield control
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
def timing_out_submit(tmp_path, monkeypatch) -> str:
    """``sbatch`` and ``qsub`` on PATH that submit for real, then report Slurm's timeout."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    real_sbatch, real_qsub = shutil.which('sbatch'), shutil.which('qsub')
    write_program(bin_dir, 'sbatch', f'{real_sbatch} "$@" >/dev/null || exit $?\n'
                                     f'echo "{TIMEOUT_MESSAGE}" >&2\nexit 1\n')
    if real_qsub:  # what Slurm's qsub wrapper prints when its sbatch failed so
        write_program(bin_dir, 'qsub', f'{real_qsub} "$@" >/dev/null || exit $?\n'
                                       'echo "There was an error running the Slurm sbatch '
                                       f'command."\necho "and the output was: \'{TIMEOUT_MESSAGE}\'"'
                                       '\nexit 1\n')
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    return str(bin_dir)


@pytest.mark.slurm
@pytest.mark.parametrize('qtype', ['slurm', pytest.param('torque', marks=pytest.mark.torque)])
def test_a_submit_that_timed_out_after_slurm_took_the_job_is_not_a_refusal(
        qtype, in_tmp, timing_out_submit, caplog):
    _require(qtype)
    caplog.set_level(logging.INFO, logger='cluster')
    prefix = f'took{uuid.uuid4().hex[:8]}'
    job = cluster.Job('echo ran', name=prefix, qtype=qtype).submit()
    assert job.get() == (0, 'ran\n', '')
    rows = _wait_until(lambda: accounted(prefix), 60, 'the job in sacct')
    assert len(rows) == 1 and list(rows.values()) == [[job.id.split('.')[0]]]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any('outcome unknown' in r.getMessage() and 'Socket timed out' in r.getMessage()
               for r in warned)


@pytest.mark.alone
@pytest.mark.slurm
@pytest.mark.parametrize('qtype', ['slurm', pytest.param('torque', marks=pytest.mark.torque)])
def test_submissions_during_a_frozen_slurmctld_are_each_reported_once(
        qtype, in_tmp, frozen_slurmctld, caplog):
    """20 submissions; slurmctld is frozen until the first submit has timed out (its
    request waits in the socket and is taken when slurmctld runs again)."""
    _require(qtype)
    caplog.set_level(logging.INFO, logger='cluster')
    prefix = f'frz{uuid.uuid4().hex[:8]}'
    jobs: List[cluster.Job] = []
    outcome: Dict[int, object] = {}

    def submit_all() -> None:
        for number in range(20):
            jobs.append(cluster.Job(f'echo {number}', name=prefix, qtype=qtype).submit())
        for number, job in enumerate(jobs):
            try:
                outcome[number] = job.id
            except Exception as exc:  # noqa: BLE001 - every outcome is asserted below
                outcome[number] = exc

    def first_submit_failed() -> bool:
        return any('outcome unknown' in r.getMessage() for r in caplog.records) or \
            bool(jobs and 'id=submitting' not in repr(jobs[0]))

    frozen_slurmctld['freeze']()
    try:
        worker = threading.Thread(target=submit_all)
        worker.start()
        _wait_until(first_submit_failed, 90, 'a submit timing out against the frozen slurmctld')
    finally:
        frozen_slurmctld['thaw']()
    worker.join(400)
    assert not worker.is_alive()
    problems = {n: o for n, o in outcome.items() if isinstance(o, Exception)}
    assert not problems, problems  # no phantom refusal, nothing left unknown
    assert len(set(outcome.values())) == 20
    for number, job in enumerate(jobs):
        assert job.get() == (0, f'{number}\n', '')
    rows = _wait_until(lambda: (lambda r: r if len(r) == 20 else None)(accounted(prefix)),
                       60, '20 jobs in sacct')
    assert all(len(ids) == 1 for ids in rows.values()), rows  # none submitted twice
    assert sorted(i for ids in rows.values() for i in ids) == \
        sorted(str(o).split('.')[0] for o in outcome.values())


@pytest.mark.alone
@pytest.mark.slurm
def test_an_outage_logs_one_warning_at_the_first_retry_and_one_info_on_recovery(
        frozen_slurmctld, caplog):
    caplog.set_level(logging.INFO, logger='cluster')
    system = Slurm()
    system.status_tries = 20
    answer: dict = {}

    def poll() -> None:
        answer['jobs'] = system.statuses(None, getpass.getuser())

    def failures() -> List[logging.LogRecord]:
        return [r for r in caplog.records if 'squeue failed' in r.getMessage()]

    frozen_slurmctld['freeze']()
    try:
        worker = threading.Thread(target=poll)
        started = time.time()
        worker.start()
        _wait_until(lambda: len(failures()) >= 2, 60, 'squeue failing twice')
    finally:
        frozen_slurmctld['thaw']()
    worker.join(120)
    assert 'jobs' in answer
    assert [r.levelno for r in failures()][:2] == [logging.WARNING, logging.INFO]
    (warning,) = [r for r in failures() if r.levelno >= logging.WARNING]
    assert 'timed out' in warning.getMessage()  # names squeue and its error
    assert warning.created - started < 30  # at the first retry
    recovered = [r for r in caplog.records if 'answers again' in r.getMessage()]
    assert len(recovered) == 1 and recovered[0].levelno == logging.INFO


DRIVER = '''
import sys, cluster
prefix = sys.argv[1]
parent = cluster.Job('exit 3', name=prefix + 'parent', qtype='slurm').submit()
parent.wait()
child = cluster.Job('echo ran > ran.txt', name=prefix + 'child', depends=[parent],
                    qtype='slurm').submit()
child.wait()
print('child', child.info.state, child.info.reason, flush=True)
'''


@pytest.mark.slurm
def test_a_driver_killed_while_submitting_a_doomed_dependent_leaves_nothing_held(tmp_path):
    """The old way was ``sbatch --hold`` then ``scancel``: an ``scancel`` on PATH that
    signals and blocks lets the test SIGKILL the driver between the two, every time."""
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    ready = tmp_path / 'scancel-called'
    write_program(bin_dir, 'scancel', f'touch {ready}\nexec sleep 600\n')
    prefix = f'kill{uuid.uuid4().hex[:8]}'
    env = dict(os.environ, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    driver = subprocess.Popen([sys.executable, '-c', DRIVER, prefix], cwd=str(tmp_path), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        _wait_until(lambda: ready.exists() or driver.poll() is not None, 180,
                    'the driver to end or to reach scancel')
        if ready.exists():
            os.killpg(driver.pid, signal.SIGKILL)
        out, err = driver.communicate(timeout=60)
        left = {i: s for i, s in queued(prefix + 'child').items() if 'PENDING' in s}
        assert not left, f'jobs left in the queue: {left}'
        assert driver.returncode == 0, err
        assert out.startswith(f'child {State.CANCELLED}') and 'dependency' in out
        assert not (tmp_path / 'ran.txt').exists()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        leftover = list(queued(prefix))
        if leftover:
            subprocess.run(['scancel', *leftover], capture_output=True)

"""Forked jobs of cluster.jobqueue (``add(..., fork=True)``, ``add_forked``): run from the
parent's memory in forked workers, cores honoured, truthful outcomes, ``on_done``."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from cluster.batch import State
from cluster.jobqueue import JobQueue
from cluster.run.errors import JobError
from test_jobqueue import Fifo, add, block, report_then_block

DEADLINE = 10  # seconds; only reached when something is broken


@pytest.fixture
def queue():
    q = JobQueue(2)
    yield q
    q.shutdown()


@pytest.fixture
def gate(tmp_path):
    fifo = Fifo(tmp_path, 'gate')
    yield fifo
    fifo.close()


def interval(seconds):
    start = time.time()
    time.sleep(seconds)  # the job's own work: its run interval is what the test reads
    return os.getpid(), start, time.time()


def test_a_forked_job_runs_from_memory_and_nothing_is_pickled(queue):
    numbers = (i for i in range(3))   # a generator: a fresh worker could not get it
    job = queue.add(lambda: (next(numbers), os.getppid()), fork=True)
    assert queue.get(job, timeout=DEADLINE) == (0, os.getpid())
    assert next(numbers) == 0         # the job ran on the child's copy
    fresh = queue.add(lambda: next(numbers))
    with pytest.raises(JobError, match='cannot pickle'):
        queue.get(fresh, timeout=DEADLINE)
    raw = queue.add(bytes, (b'as it is',), fork=True)
    assert queue.get(raw, timeout=DEADLINE) == b'as it is'


def test_forked_workers_are_reused_and_cores_are_honoured(queue):
    ids = queue.add_forked(interval, [(0.2,)] * 6, names=[f'c{i}' for i in range(6)])
    runs = [queue.get(i, timeout=DEADLINE) for i in ids]
    assert len({pid for pid, _, _ in runs}) <= queue.cores   # one fork per core, reused
    assert [queue.jobs[i].name for i in ids] == [f'c{i}' for i in range(6)]
    # never more than `cores` at once: at every start, fewer than 2 others ran
    for _, start, _ in runs:
        assert sum(s <= start < e for _, s, e in runs) <= queue.cores
    two_core = queue.add_forked(interval, [(0.2,)] * 3, cores=2)
    spans = sorted(queue.get(i, timeout=DEADLINE)[1:] for i in two_core)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # one at a time


def test_a_forked_worker_killed_by_a_signal_fails_its_job_only(queue, gate, tmp_path):
    report = Fifo(tmp_path, 'report')
    victim, other = queue.add_forked(report_then_block, [(report.path, gate.path)] * 2)
    pids = [int(report.read_line()), int(report.read_line())]
    assert all(psutil.Process(p).ppid() == os.getpid() for p in pids)   # forked here
    assert all(os.getsid(p) == p for p in pids)                          # own sessions
    os.kill(pids[0], signal.SIGKILL)
    assert queue.wait_any([victim, other], timeout=DEADLINE)
    killed = [j for j in (victim, other) if queue.jobs[j].state is State.FAILED]
    assert len(killed) == 1, [queue.jobs[j] for j in (victim, other)]
    assert queue.jobs[killed[0]].reason == 'killed by signal 9 (SIGKILL)'
    assert queue.jobs[killed[0]].exitcode == -9
    with pytest.raises(JobError, match=r'killed by signal 9 \(SIGKILL\)'):
        queue.get(killed[0])
    gate.release()
    survivor = ({victim, other} - set(killed)).pop()
    assert queue.get(survivor, timeout=DEADLINE) == 'x'
    assert queue.get(queue.add(add, (40, 2), fork=True), timeout=DEADLINE) == 42
    report.close()


def test_time_limit_cancel_and_exceptions_of_forked_jobs(queue, gate):
    slow = queue.add(time.sleep, (30,), fork=True, time_limit=0.5)
    assert queue.wait(slow, timeout=DEADLINE)
    assert queue.jobs[slow].state is State.TIMEOUT
    assert queue.jobs[slow].reason == 'time limit of 0.5 s reached'
    running = queue.add(block, (gate.path,), fork=True)
    pending = queue.add(block, (gate.path,), cores=2, fork=True)
    queue.cancel(pending)
    queue.cancel(running)
    assert queue.wait([running, pending], timeout=DEADLINE)
    assert [queue.jobs[j].state for j in (running, pending)] == [State.CANCELLED] * 2
    failing = queue.add(int, ('not a number',), fork=True)
    with pytest.raises(ValueError, match='not a number') as info:
        queue.get(failing, timeout=DEADLINE)
    assert 'ValueError' in info.value.remote_traceback


def test_on_done_is_called_once_per_job_whatever_its_end(queue, gate):
    seen = []
    done = threading.Event()

    def note(job):
        seen.append((job.id, job.state))
        if len(seen) == 3:
            done.set()
    ok, bad = queue.add_forked(add, [(1, 2), ('a', 1)], on_done=[note, note])
    stuck = queue.add(block, (gate.path,), fork=True, on_done=note)
    queue.wait([ok, bad], timeout=DEADLINE)
    queue.shutdown()                      # fails the running job: its callback runs too
    assert done.wait(DEADLINE)
    assert sorted(seen) == [(ok, State.COMPLETED), (bad, State.FAILED),
                            (stuck, State.FAILED)]


def test_a_forked_worker_dies_with_its_parent(tmp_path):
    report = Fifo(tmp_path, 'report')
    script = textwrap.dedent(f'''
        import os, sys, time
        from cluster.jobqueue import JobQueue

        def stay(report):
            with open(report, 'w') as fifo:
                fifo.write(f'{{os.getpid()}}\\n')
            time.sleep(300)

        q = JobQueue(1)
        q.add(stay, ({report.path!r},), fork=True)
        input()
    ''')
    proc = subprocess.Popen([sys.executable, '-c', script], stdin=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    pid = int(report.read_line())
    assert psutil.Process(pid).ppid() == proc.pid
    proc.kill()
    proc.wait(DEADLINE)
    end = time.monotonic() + DEADLINE
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < end, f'forked worker {pid} outlived its parent'
        time.sleep(0.05)  # polling for the process to go, with a deadline
    report.close()

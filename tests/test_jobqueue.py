"""Tests of cluster.jobqueue: scheduling rules, bad input, faults, threads, exit.

Jobs that must stay running block on a FIFO "gate" that the test holds open read-write, so
they start without waiting and finish exactly when the test writes one byte per job.
Scheduling decisions are made in the same scheduler pass that settles a job, so after
``queue.wait(job)`` (or ``queue.update()``) the states show what was started.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import psutil
import pytest

from cluster.batch import State
from cluster.run.errors import JobError
from cluster.jobqueue import JobQueue

DEADLINE = 10  # seconds; only reached when something is broken


# ---------------------------------------------------------------- job functions

def add(a, b=0):
    return a + b


def block(gate: str) -> str:
    """Wait for one byte on the gate FIFO."""
    fd = os.open(gate, os.O_RDONLY)
    try:
        return os.read(fd, 1).decode()
    finally:
        os.close(fd)


def block_other(gate: str) -> str:
    """Same as block, but another function (so its run time is learned apart)."""
    return block(gate)


def report_then_block(report: str, gate: str) -> str:
    fd = os.open(report, os.O_WRONLY)
    os.write(fd, f'{os.getpid()}\n'.encode())
    os.close(fd)
    return block(gate)


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def return_generator():
    return (i for i in range(3))


class Fifo:
    """A FIFO the test keeps open read-write: writers and readers never block on open."""

    def __init__(self, directory, name: str) -> None:
        self.path = str(directory / name)
        os.mkfifo(self.path, 0o600)
        self.fd = os.open(self.path, os.O_RDWR)

    def release(self, count: int = 1) -> None:
        os.write(self.fd, b'x' * count)

    def read_line(self) -> str:
        data = b''
        while not data.endswith(b'\n'):
            ready, _, _ = select.select([self.fd], [], [], DEADLINE)
            assert ready, f'nothing arrived on {self.path} within {DEADLINE} s'
            data += os.read(self.fd, 1)
        return data.decode().strip()

    def close(self) -> None:
        os.close(self.fd)


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


def states(q: JobQueue, *ids: int):
    q.update()
    return [q.jobs[i].state for i in ids]


# ---------------------------------------------------------------- basics

def test_import_creates_nothing_and_jqueue_is_lazy():
    code = textwrap.dedent('''
        import threading, psutil
        import cluster.jobqueue as jq
        print(len(psutil.Process().children()), jq.JQUEUE, threading.active_count())
        q = jq.get_jobqueue(1)
        print(q is jq.JQUEUE is jq.get_jobqueue(), q.cores, q.get(q.add(abs, (-4,))))
    ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert out == ['0 None 1', 'True 1 4']


def test_add_get_ids_and_fields(queue):
    first = queue.add(add, (1,), {'b': 2}, name='sum')
    second = queue.add(add, [3, 4], dependencies=first)
    assert (first, second) == (1, 2)
    assert queue.get(second) == 7 and queue.get(first) == 3
    job = queue.jobs[first]
    assert (job.state, job.exitcode, job.reason, job.name, job.cores) == \
        (State.COMPLETED, 0, None, 'sum', 1)
    assert queue.jobs[second].dependencies == [first]
    assert job.start <= job.end <= time.time()
    assert queue.jobs[second].start >= job.end


def test_default_cores_are_the_machines():
    q = JobQueue()
    try:
        assert q.cores == psutil.cpu_count()
    finally:
        q.shutdown()


def test_lambdas_and_closures_run(queue):
    offset = 10
    assert queue.get(queue.add(lambda x: x + offset, (1,))) == 11
    assert queue.get(queue.add(lambda: [i * i for i in range(4)])) == [0, 1, 4, 9]


def test_main_functions_and_modules_beside_the_script(tmp_path):
    (tmp_path / 'helper.py').write_text('def triple(x):\n    return 3 * x\n')
    script = tmp_path / 'pipeline.py'
    script.write_text(textwrap.dedent('''
        from cluster.jobqueue import JobQueue
        import helper
        FACTOR = 5

        def scale(x):
            return helper.triple(x) * FACTOR

        class Point:
            def __init__(self, x):
                self.x = x

        class PipelineError(Exception):
            pass

        def fail():
            raise PipelineError('bad input')

        if __name__ == '__main__':
            q = JobQueue(2)
            a = q.add(scale, (2,))
            b = q.add(helper.triple, (7,))
            FACTOR = 6  # a changed global is seen by the next job
            c = q.add(scale, (2,))
            d = q.add(Point, (4,))
            point = q.get(d)
            print(q.get(a), q.get(b), q.get(c), point.x, type(point) is Point)
            try:
                q.get(q.add(fail))
            except PipelineError as exc:  # the script's own class comes back
                print('caught', exc)
    '''))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, cwd='/', env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['30', '21', '36', '4', 'True', 'caught', 'bad', 'input']


def test_a_jobs_chdir_does_not_leak_into_the_next_job(tmp_path):
    q = JobQueue(1)
    try:
        q.add(os.chdir, (str(tmp_path),))
        assert q.get(q.add(os.getcwd)) == os.getcwd()
    finally:
        q.shutdown()


def test_rounds_of_jobs_in_directories_that_are_removed(monkeypatch):
    """Workers never depend on a user's directory: each round of jobs runs in its own
    temporary directory, removed at the round's end, and every round still works."""
    q = JobQueue(1)
    try:
        for _ in range(3):
            with tempfile.TemporaryDirectory() as directory:
                monkeypatch.chdir(directory)
                assert q.get(q.add(os.getcwd)) == directory
                q.add(os.chdir, ('/tmp',))  # leaves the worker elsewhere; no harm
                assert q.get(q.add(os.getcwd)) == directory
            monkeypatch.chdir('/')
        worker = q._dispatcher.workers[0]
        assert psutil.Process(worker.proc.pid).cwd() == '/'
        assert q._thread.is_alive() and not q._broken
    finally:
        q.shutdown()


def test_a_job_whose_directory_is_gone_fails_saying_so(tmp_path, monkeypatch, gate):
    q = JobQueue(1)
    try:
        blocker = q.add(block, (gate.path,))
        gone = tmp_path / 'gone'
        gone.mkdir()
        monkeypatch.chdir(gone)
        job = q.add(os.getcwd)
        monkeypatch.chdir(tmp_path)
        gone.rmdir()
        gate.release()
        q.get(blocker)
        with pytest.raises(JobError, match=f'directory .* is gone.*{gone}'):
            q.get(job)
        assert q.get(q.add(add, (1, 2))) == 3  # the queue goes on
    finally:
        q.shutdown()


def test_wait_forms_and_timeouts(queue, gate):
    quick = queue.add(add, (1, 1))
    slow = queue.add(block, (gate.path,))
    assert queue.wait(quick, timeout=DEADLINE)
    assert queue.wait([quick], timeout=DEADLINE)
    assert queue.wait([quick, slow], timeout=0.05) is False
    assert queue.wait(timeout=0.05) is False
    with pytest.raises(TimeoutError, match=f'job {slow}'):
        queue.get(slow, timeout=0.05)
    gate.release()
    assert queue.wait(timeout=DEADLINE)
    assert queue.get(slow) == 'x'
    with pytest.raises(JobError, match='unknown job id 99'):
        queue.wait([99])


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize('cores', [0, -1, 3, 1.5, True, '2'])
def test_cores_out_of_range_refused(queue, cores):
    with pytest.raises(JobError, match='cores'):
        queue.add(add, (1,), cores=cores)
    assert queue.jobs == {}


def test_unknown_dependency_refused(queue):
    queue.add(add, (1,))
    with pytest.raises(JobError, match='unknown dependency id 99'):
        queue.add(add, (1,), dependencies=[1, 99])
    assert queue.add(add, (1,)) == 2  # the refused job took no id


def test_own_future_id_refused_so_no_cycle(queue):
    with pytest.raises(JobError, match='cycles cannot form'):
        queue.add(add, (1,), dependencies=[1])
    first = queue.add(add, (1,))
    with pytest.raises(JobError, match='unknown dependency id 3'):
        queue.add(add, (1,), dependencies=[first, first + 2])


def test_bad_arguments_refused(queue):
    with pytest.raises(JobError, match='callable'):
        queue.add('not a function')
    with pytest.raises(JobError, match='args must be a tuple or list'):
        queue.add(add, 'ab')
    with pytest.raises(JobError, match='not a job id'):
        queue.add(add, (1,), dependencies=['x'])


def test_unpicklable_argument_fails_that_job_alone(queue):
    bad = queue.add(add, ((i for i in range(3)),))
    good = queue.add(add, (2, 3))
    dependent = queue.add(add, (1,), dependencies=bad)
    with pytest.raises(JobError, match="cannot pickle the function or its arguments.*generator"):
        queue.get(bad)
    assert queue.get(good) == 5
    assert queue.jobs[bad].state is State.FAILED
    with pytest.raises(JobError, match=f'dependency {bad} failed'):
        queue.get(dependent)


def test_unpicklable_return_value_fails_that_job_alone(queue):
    bad = queue.add(return_generator)
    with pytest.raises(JobError, match=r'return value \(generator\) cannot be pickled'):
        queue.get(bad)
    assert queue.jobs[bad].exitcode == 1
    assert queue.get(queue.add(add, (1, 2))) == 3


def test_exception_carries_remote_traceback(queue):
    job = queue.add(raise_value_error, ('boom 42',))
    with pytest.raises(ValueError, match='boom 42') as caught:
        queue.get(job)
    remote = caught.value.remote_traceback
    assert 'in raise_value_error' in remote and 'ValueError: boom 42' in remote
    assert isinstance(caught.value.__cause__, JobError)
    assert remote in str(caught.value.__cause__)
    assert not getattr(caught.value, '__notes__', None)    # shown once: by the cause
    info = queue.jobs[job]
    assert (info.state, info.exitcode) == (State.FAILED, 1)
    assert 'ValueError: boom 42' in info.reason


# ---------------------------------------------------------------- scheduling

def test_dependent_waits_for_its_dependency(queue, gate):
    first = queue.add(block, (gate.path,))
    second = queue.add(add, (1,), dependencies=[first])
    assert states(queue, first, second) == [State.RUNNING, State.PENDING]
    gate.release()
    assert queue.get(second) == 1
    assert queue.jobs[second].start >= queue.jobs[first].end


def test_failed_dependency_cancels_dependents_transitively(queue):
    bad = queue.add(raise_value_error, ('x',))
    child = queue.add(add, (1,), dependencies=bad)
    grandchild = queue.add(add, (1,), dependencies=[child])
    bystander = queue.add(add, (5,))
    assert queue.wait([bad, child, grandchild], timeout=DEADLINE)
    assert queue.jobs[child].reason == f'dependency {bad} failed'
    assert queue.jobs[grandchild].reason == f'dependency {child} cancelled'
    for job in (child, grandchild):  # never ran: cancelled, as Slurm and Torque do
        assert queue.jobs[job].state is State.CANCELLED and queue.jobs[job].start is None
    with pytest.raises(JobError, match=f'dependency {bad} failed'):
        queue.get(child)
    late = queue.add(add, (1,), dependencies=[bad])  # added after the failure
    with pytest.raises(JobError, match=f'dependency {bad} failed'):
        queue.get(late)
    assert queue.get(bystander) == 5


def test_jobs_start_only_when_their_cores_fit(queue, gate):
    one = queue.add(block, (gate.path,))
    two = queue.add(block, (gate.path,))
    wide = queue.add(add, (1,), cores=2)
    assert states(queue, one, two, wide) == [State.RUNNING, State.RUNNING, State.PENDING]
    gate.release()
    assert queue.wait_any([one, two], timeout=DEADLINE)  # one of them ends
    assert states(queue, wide) == [State.PENDING]  # 1 core free, needs 2
    gate.release()
    assert queue.get(wide) == 1
    assert queue.jobs[wide].start >= max(queue.jobs[one].end, queue.jobs[two].end)


def test_small_jobs_backfill_while_a_large_one_waits(queue, gate):
    running = queue.add(block, (gate.path,))
    large = queue.add(add, (1,), cores=2)
    small = queue.add(add, (2,))
    assert queue.get(small, timeout=DEADLINE) == 2  # ran past the blocked head
    assert states(queue, running, large) == [State.RUNNING, State.PENDING]
    gate.release()
    assert queue.get(large) == 1


def test_large_job_gets_a_reservation_after_bounded_backfill(queue, tmp_path):
    gates = {name: Fifo(tmp_path, name) for name in ('a', 'b1', 'b2', 'head')}
    first = queue.add(block_other, (gates['a'].path,))
    head = queue.add(block, (gates['head'].path,), cores=2)
    fillers = [queue.add(block, (gates[name].path,))
               for name in ('b1', 'b2', 'b2', 'b2', 'b2')]
    # one core free: the first filler backfills (bypass 1 of the queue's 2)
    assert states(queue, head, *fillers[:2]) == [State.PENDING, State.RUNNING, State.PENDING]
    gates['a'].release()
    assert queue.wait(first, timeout=DEADLINE)
    # a core freed while the head still lacks one: the second bypass, the last allowed
    assert states(queue, head, *fillers[1:3]) == [State.PENDING, State.RUNNING, State.PENDING]
    gates['b1'].release()
    assert queue.wait(fillers[0], timeout=DEADLINE)
    # budget spent: the free core stays free for the head (its reservation)
    assert states(queue, head, fillers[2]) == [State.PENDING, State.PENDING]
    gates['b2'].release()
    assert queue.wait(fillers[1], timeout=DEADLINE)
    assert states(queue, head, *fillers[2:]) == [State.RUNNING] + [State.PENDING] * 3
    gates['head'].release()
    gates['b2'].release(3)
    assert queue.wait(timeout=DEADLINE)
    assert all(queue.jobs[f].start >= queue.jobs[head].start for f in fillers[2:])
    for fifo in gates.values():
        fifo.close()


# ---------------------------------------------------------------- faults

def test_worker_killed_by_sigkill_fails_only_its_job(queue, gate, tmp_path):
    report = Fifo(tmp_path, 'report')
    victim = queue.add(report_then_block, (report.path, gate.path))
    pid = int(report.read_line())
    other = queue.add(report_then_block, (report.path, gate.path))
    other_pid = int(report.read_line())
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(JobError, match=r'killed by signal 9 \(SIGKILL\)'):
        queue.get(victim, timeout=DEADLINE)
    assert queue.jobs[victim].exitcode == -9
    assert queue.jobs[other].state is State.RUNNING and psutil.pid_exists(other_pid)
    gate.release()
    assert queue.get(other, timeout=DEADLINE) == 'x'
    assert queue.get(queue.add(add, (40, 2)), timeout=DEADLINE) == 42  # the queue goes on
    report.close()


def test_cancel_pending_and_running(queue, gate):
    running = queue.add(block, (gate.path,))
    pending = queue.add(add, (1,), dependencies=running)
    child = queue.add(add, (1,), dependencies=pending)
    queue.cancel(pending)
    assert queue.wait(pending, timeout=DEADLINE)
    assert queue.jobs[pending].state is State.CANCELLED
    assert queue.jobs[child].reason == f'dependency {pending} cancelled'
    queue.cancel(running)
    assert queue.wait(running, timeout=DEADLINE)
    assert queue.jobs[running].state is State.CANCELLED
    assert queue.get(queue.add(add, (2,))) == 2


def test_restart_refuses_while_running_unless_forced(queue, gate):
    running = queue.add(block, (gate.path,))
    waiting = queue.add(add, (3,), dependencies=[running])
    queue.update()
    with pytest.raises(JobError, match=f'jobs \\[{running}\\] are running'):
        queue.restart()
    queue.restart(force=True)
    assert queue.jobs[running].reason == 'killed by restart'
    with pytest.raises(JobError, match=f'dependency {running} failed'):
        queue.get(waiting, timeout=DEADLINE)
    assert queue.get(queue.add(add, (1, 1)), timeout=DEADLINE) == 2


def test_shutdown_fails_unfinished_jobs_and_refuses_new_ones(gate):
    before = {p.pid for p in psutil.Process().children()}
    q = JobQueue(1)
    running = q.add(block, (gate.path,))
    queued = q.add(add, (1,))
    q.update()
    workers = [p for p in psutil.Process().children() if p.pid not in before]
    assert workers
    q.shutdown()
    for job in (running, queued):
        with pytest.raises(JobError, match='shut down'):
            q.get(job)
    with pytest.raises(JobError, match='shut down'):
        q.add(add, (1,))
    _, alive = psutil.wait_procs(workers, timeout=DEADLINE)
    assert not alive


@pytest.mark.filterwarnings('ignore::pytest.PytestUnhandledThreadExceptionWarning')
def test_workers_that_cannot_start_fail_the_jobs_instead_of_hanging(monkeypatch):
    added = threading.Event()

    class NoFork:
        def __init__(self, *args, **kwargs):
            added.wait(DEADLINE)  # fail once the job is queued
            raise OSError(11, 'Resource temporarily unavailable')
    monkeypatch.setattr('cluster.jobqueue.dispatch.WorkerProcess', NoFork)
    q = JobQueue(1)
    try:
        job = q.add(add, (1,))
        added.set()
        with pytest.raises(JobError, match='scheduler crashed.*Resource temporarily'):
            q.get(job, timeout=DEADLINE)
        with pytest.raises(JobError, match='broken: the scheduler crashed'):
            q.add(add, (2,))
    finally:
        q.shutdown()


def test_a_forked_child_exiting_leaves_the_parents_queue_alone():
    code = textwrap.dedent('''
        import os, sys, warnings
        warnings.simplefilter('ignore')  # 3.12+ warns about fork with threads
        from cluster.jobqueue import JobQueue
        q = JobQueue(1)
        print(q.get(q.add(abs, (-2,))))
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # runs atexit handlers in the child
        os.waitpid(pid, 0)
        print(q.get(q.add(abs, (-3,)), timeout=10))
    ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ['2', '3'], out.stderr


def test_threads_add_get_and_wait_concurrently(queue):
    results, errors = {}, []

    def client(n: int) -> None:
        try:
            previous = None
            mine = []
            for i in range(40):
                previous = queue.add(add, (n, i), dependencies=previous)
                mine.append(previous)
            queue.wait(mine, timeout=DEADLINE)
            results[n] = [queue.get(j) for j in mine]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not errors
    assert results == {n: [n + i for i in range(40)] for n in range(8)}
    assert sorted(queue.jobs) == list(range(1, 8 * 40 + 1))


@pytest.mark.parametrize('ending', ['exit', 'sigkill'])
def test_no_orphan_processes_after_the_parent_ends(tmp_path, ending):
    """At interpreter exit the queue kills its workers' trees; if the parent is killed
    outright, each worker sees its lifeline pipe close and kills its process group."""
    report = Fifo(tmp_path, 'report')
    script = textwrap.dedent(f'''
        import os, subprocess, sys
        from cluster.jobqueue import JobQueue

        def long_job(report):
            child = subprocess.Popen(['sleep', '300'])
            with open(report, 'w') as fifo:
                fifo.write(f'{{os.getpid()}} {{child.pid}}\\n')
            child.wait()

        q = JobQueue(2)
        q.add(long_job, ({report.path!r},))
        q.add(long_job, ({report.path!r},))
        input()  # the test says when to exit, with the jobs still running
    ''')
    proc = subprocess.Popen([sys.executable, '-c', script], stdin=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    pids = [int(p) for _ in range(2) for p in report.read_line().split()]
    assert all(psutil.pid_exists(p) for p in pids)
    if ending == 'exit':
        proc.communicate(b'\n', timeout=DEADLINE)
        assert proc.returncode == 0
    else:
        proc.kill()
        proc.wait(DEADLINE)

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + DEADLINE
    while not all(map(gone, pids)) and time.monotonic() < deadline:
        select.select([], [], [], 0.01)  # kill -9 is asynchronous; bounded wait for it
    assert all(map(gone, pids)), [p for p in pids if not gone(p)]
    report.close()


def test_a_job_past_its_time_limit_is_killed_and_ends_timeout(queue):
    started = time.monotonic()
    late = queue.add(time.sleep, (60,), time_limit=1)
    with pytest.raises(JobError, match='timeout: time limit of 1 s reached'):
        queue.get(late, timeout=30)
    assert time.monotonic() - started < 30
    assert queue.jobs[late].state is State.TIMEOUT
    assert queue.get(queue.add(add, (1, 2), time_limit=30)) == 3     # in time: completes
    with pytest.raises(JobError, match='time_limit'):
        queue.add(add, (1, 2), time_limit=0)

"""The queue watcher: one status call per interval for all jobs and threads, settling,
retries, throttling. A scripted batch system drives the unit tests; the real Slurm the
rest (see also test_job.py, which runs on every system)."""
from __future__ import annotations

import threading
from typing import Dict, List, Optional, Sequence

import pytest

import cluster
from cluster import queue as queue_module
import cluster.queue.watch  # noqa: F401 (queue_module.watch)
from cluster.batch import BatchSystem, JobInfo, State
from cluster.run.errors import ClusterError, CommandError
from cluster.queue import Queue, Watcher
from cluster.script import JobFiles, write_atomic


class ScriptedSystem(BatchSystem):
    """Answers status polls from a list of prepared listings; counts every call."""

    name = 'scripted'

    def __init__(self, listings: List, accounting: Optional[Dict[str, JobInfo]] = None):
        super().__init__()
        self.listings = list(listings)
        self.accounting = accounting or {}
        self.status_calls = 0
        self.final_calls: List[List[str]] = []
        self.lock = threading.Lock()

    def submit(self, files, dependencies=(), options=None):
        raise NotImplementedError

    def statuses(self, job_ids=None, user=None):
        with self.lock:
            self.status_calls += 1
            answer = self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]
        if isinstance(answer, Exception):
            raise answer
        return {k: JobInfo(v.id, v.state, v.exitcode) for k, v in answer.items()}

    def final_info(self, job_ids: Sequence[str]):
        self.final_calls.append(list(job_ids))
        return {i: self.accounting[i] for i in job_ids if i in self.accounting}

    def cancel(self, job_ids):
        pass

    def block(self, job_ids, timeout):
        threading.Event().wait(min(timeout, 0.01))
        return False


def info(job_id, state, code=None):
    return JobInfo(job_id, state, code)


def test_one_status_call_per_interval_for_all_jobs_and_threads():
    running = {str(i): info(str(i), State.RUNNING) for i in range(50)}
    done = {str(i): info(str(i), State.COMPLETED, 0) for i in range(50)}
    system = ScriptedSystem([running] * 3 + [done])
    watcher = Watcher(system, 'me', interval=0.05)
    for job_id in running:
        watcher.track(job_id)
    threads = [threading.Thread(target=watcher.wait, args=([str(i)],)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(not t.is_alive() for t in threads)
    assert system.status_calls == 4  # 50 jobs, 50 threads: one call per poll
    assert all(watcher.info(str(i)).state == State.COMPLETED for i in range(50))


def test_cached_within_the_interval():
    system = ScriptedSystem([{'1': info('1', State.RUNNING)}])
    watcher = Watcher(system, 'me', interval=3600)
    watcher.track('1')
    for _ in range(20):
        assert watcher.info('1').state == State.RUNNING
    assert system.status_calls == 1


def test_first_polls_of_an_idle_watcher_come_quickly_then_back_off():
    running, done = {'1': info('1', State.RUNNING)}, {'1': info('1', State.COMPLETED, 0)}
    system = ScriptedSystem([running, running, running, done])
    watcher = Watcher(system, 'me', interval=3600)
    watcher.track('1')
    result = watcher.wait(['1'], timeout=10)['1']  # 0, 0.25, 0.5, 1 s: not an hour
    assert result.state is State.COMPLETED and system.status_calls == 4
    assert watcher.gap == 4.0  # 0.25 doubled after each of the 4 polls
    watcher.track('2')  # idle again: the pace starts over, one poll answers all jobs
    watcher.track('3')
    assert watcher.gap == queue_module.watch.FIRST_POLL


def test_missing_polls_count_only_at_the_full_interval():
    system = ScriptedSystem([{}])
    watcher = Watcher(system, 'me', interval=3600)
    watcher.track('5', JobFiles('/nonexistent', 'five'))  # no exit-code file ever
    for _ in range(4):
        watcher.refresh(force=True)  # polls at the start-up pace: not counted
    assert watcher.info('5').state is State.PENDING
    watcher._pace = None
    for _ in range(queue_module.watch.MISSING_POLLS):
        watcher.refresh(force=True)
    assert watcher.known('5').state is State.FAILED


def test_vanished_job_is_settled_from_its_exit_code_file(tmp_path):
    files = JobFiles(str(tmp_path), 'gone')
    write_atomic(files.exitcode, '3\n')
    system = ScriptedSystem([{'7': info('7', State.RUNNING)}, {}])
    watcher = Watcher(system, 'me', interval=0)
    watcher.track('7', files)
    result = watcher.wait(['7'], timeout=10)['7']
    assert (result.state, result.exitcode) == (State.FAILED, 3)
    assert system.final_calls == []  # the file answered; no accounting query needed


def test_vanished_job_without_file_asks_accounting_once_for_all():
    accounting = {'1': info('1', State.TIMEOUT), '2': info('2', State.COMPLETED, 0)}
    system = ScriptedSystem([{}], accounting)
    watcher = Watcher(system, 'me', interval=0)
    watcher.track('1')
    watcher.track('2')
    result = watcher.wait(['1', '2'], timeout=10)
    assert result['1'].state == State.TIMEOUT and result['2'].state == State.COMPLETED
    assert system.final_calls == [['1', '2']]


def test_job_lost_without_any_trace_fails_with_a_reason(tmp_path):
    system = ScriptedSystem([{}])
    watcher = Watcher(system, 'me', interval=0)
    watcher.track('9', JobFiles(str(tmp_path), 'lost'))  # submitted here: no code file
    result = watcher.wait(['9'], timeout=10)['9']
    assert result.state == State.FAILED and 'without an exit code' in result.reason


def test_failing_status_command_is_retried_then_reported(monkeypatch):
    monkeypatch.setattr(queue_module.watch, 'MAX_POLL_FAILURES', 3)
    error = CommandError(['squeue'], 1, '', 'slurm_load_jobs error: Unable to contact')
    system = ScriptedSystem([error, error, {'1': info('1', State.COMPLETED, 0)}])
    watcher = Watcher(system, 'me', interval=0)
    monkeypatch.setattr(watcher, '_backoff', lambda: 0.0)
    watcher.track('1')
    assert watcher.wait(['1'], timeout=30)['1'].state == State.COMPLETED
    broken = ScriptedSystem([error])
    watcher = Watcher(broken, 'me', interval=0)
    monkeypatch.setattr(watcher, '_backoff', lambda: 0.0)
    watcher.track('1')
    with pytest.raises(ClusterError, match='failed 3 times in a row.*Unable to contact'):
        watcher.wait(['1'], timeout=30)


def test_wait_times_out():
    system = ScriptedSystem([{'1': info('1', State.RUNNING)}])
    watcher = Watcher(system, 'me', interval=0)
    watcher.track('1')
    with pytest.raises(TimeoutError, match='1'):
        watcher.wait(['1'], timeout=0.1)


def test_max_queue_len_throttles(qtype, in_tmp):
    blocker = cluster.submit('sleep 2', qtype=qtype)
    the_queue = Queue(qtype=qtype)
    the_queue.update()
    assert len(the_queue) >= 1
    assert not the_queue.can_submit(max_queue_len=len(the_queue))
    assert the_queue.can_submit(max_queue_len=len(the_queue) + 1)
    follower = cluster.submit('echo after', qtype=qtype, max_queue_len=1)
    assert blocker.done  # submit waited until the blocker left the queue
    assert follower.get()[1] == 'after\n'


def test_queue_lists_the_users_jobs(qtype, in_tmp):
    job = cluster.submit('sleep 1', qtype=qtype)
    the_queue = Queue(qtype=qtype)
    the_queue.update()
    assert job.id in the_queue.queue
    job.wait()


@pytest.fixture(autouse=True)
def detection_matches_the_environment():
    """No test may leave a detected batch system behind that PATH no longer gives."""
    yield
    from cluster import batch
    cached = batch._DETECTED
    assert cached is None or cached == batch.detect(refresh=True), \
        f'batch._DETECTED left at {cached!r}'


def test_get_cluster_environment_sets_mode(monkeypatch):
    from cluster import batch, run
    monkeypatch.setattr(batch, '_DETECTED', batch._DETECTED)  # restored with PATH
    detected = queue_module.get_cluster_environment()
    assert queue_module.MODE == detected
    assert detected == ('slurm' if run.which('sbatch') else
                        'torque' if run.which('qsub') else 'local')
    monkeypatch.setenv('PATH', '/nonexistent')
    assert queue_module.get_cluster_environment() == 'local'


def test_completed_with_nonzero_exit_code_file_is_failed(tmp_path):
    files = JobFiles(str(tmp_path), 'nonzero')
    write_atomic(files.exitcode, '2\n')
    system = ScriptedSystem([{'4': info('4', State.COMPLETED)}])
    watcher = Watcher(system, 'me', interval=0)
    watcher.track('4', files)
    result = watcher.wait(['4'], timeout=10)['4']
    assert (result.state, result.exitcode) == (State.FAILED, 2)


def test_queue_length_counts_jobs_submitted_since_the_last_poll(tmp_path):
    system = ScriptedSystem([{'1': info('1', State.RUNNING)}, {'1': info('1', State.RUNNING)},
                             {}])
    watcher = Watcher(system, 'me', interval=3600)
    watcher.track('1')
    assert watcher.open_count() == 1
    # submitted after the poll: counted before any poll has seen it
    watcher.track('2', JobFiles(str(tmp_path), 'two'))
    assert watcher.open_count() == 2 and system.status_calls == 1
    watcher.refresh(force=True)
    assert watcher.open_count() == 2  # '2' still unseen: it is not in this listing either
    watcher.interval = 0
    watcher.wait(['2'], timeout=10)  # it vanished and was settled: no longer counted
    assert watcher.open_count() == 0

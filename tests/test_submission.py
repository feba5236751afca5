"""The submission thread: submit() returns while the batch system's submit command runs;
ids come in order, refusals surface at ``id``, and polls see every submitted job."""
from __future__ import annotations

import os
import threading

import pytest

import cluster
from cluster.batch.local import Local
from cluster.run.errors import SubmissionError
from conftest import require, slurm_ready


@pytest.fixture
def slurm(in_tmp):
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    return in_tmp


@pytest.mark.slurm
def test_ids_follow_the_order_of_submit_calls(slurm):
    jobs = [cluster.Job('true', qtype='slurm').submit() for _ in range(8)]
    ids = [int(job.id) for job in jobs]
    assert ids == sorted(ids) and len(set(ids)) == 8
    assert all(job.wait() for job in jobs)


@pytest.mark.slurm
def test_a_refused_job_raises_at_its_id_and_keeps_its_script(slurm):
    job = cluster.Job('true', qtype='slurm', partition='no_such_partition').submit()
    with pytest.raises(SubmissionError, match='(?i)partition'):
        job.id
    with pytest.raises(SubmissionError):
        job.get()
    assert 'refused' in repr(job)
    assert os.path.getsize(job.files.submission) > 0
    follower = cluster.Job('echo still fine', qtype='slurm').submit()
    assert follower.get() == (0, 'still fine\n', '')


@pytest.mark.slurm
def test_a_poll_right_after_submit_sees_the_job(slurm):
    the_queue = cluster.Queue(qtype='slurm')
    job = cluster.Job('sleep 1', qtype='slurm').submit()
    the_queue.update()
    assert job.id in the_queue.queue
    job.wait()


def test_a_dependent_waits_for_its_dependency_id_in_the_submission_thread(in_tmp):
    first = cluster.Job('echo one', qtype='local').submit()
    second = cluster.Job('echo two', qtype='local', depends=[first]).submit()
    assert second.get() == (0, 'two\n', '')
    assert first.get() == (0, 'one\n', '')


@pytest.mark.slurm
def test_a_dependent_of_a_refused_job_names_its_dependency(slurm):
    refused = cluster.Job('true', qtype='slurm', partition='no_such_partition').submit()
    dependent = cluster.Job('true', qtype='slurm', depends=[refused]).submit()
    with pytest.raises(cluster.JobError, match='dependency true.* was not submitted'):
        dependent.id


def test_clean_of_a_job_being_submitted_waits_then_refuses_while_it_is_unfinished(
        in_tmp, monkeypatch):
    """submit() returns before the submit command ran: clean() must not pull the script
    from under it, nor from under the queued or running job afterwards. (The submit
    command is held back up to 2 s; the job then blocks on a FIFO until the test writes.)"""
    held = threading.Event()
    seen = []
    original = Local.submit

    def slow_submit(self, files, dependencies=(), options=None):
        held.wait(2)
        seen.append(os.path.exists(files.submission))
        return original(self, files, dependencies, options)
    monkeypatch.setattr(Local, 'submit', slow_submit)
    gate = in_tmp / 'gate'
    os.mkfifo(gate)
    job = cluster.Job(f'read line < {gate}; echo "$line"', qtype='local').submit()
    with pytest.raises(cluster.JobError, match=r'needs its files: wait\(\) .* cancel\(\)'):
        job.clean()
    assert seen == [True]
    assert os.path.getsize(job.files.submission) > 0
    with open(gate, 'w') as writer:  # blocks until the job opened the FIFO: it runs
        writer.write('hi\n')
    assert job.get() == (0, 'hi\n', '')
    job.clean()
    assert not os.path.exists(job.files.submission)

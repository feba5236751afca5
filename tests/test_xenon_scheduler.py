"""xenon_backend.Scheduler against the real xenon-grpc server, with the ``local`` adaptor."""
from __future__ import annotations

import os
import queue

import pytest

from xenon_backend import exceptions as xe
from xenon_backend.messages import Job, JobDescription, JobStatus, QueueStatus

pytest_plugins = ['xenon_fixtures']
pytestmark = pytest.mark.xenon


def test_adaptors_are_listed_and_described(xb):
    names = xb.Scheduler.get_adaptor_names()
    assert names == ['local', 'ssh', 'at', 'slurm', 'gridengine', 'torque']
    descriptions = {d.name: d for d in xb.Scheduler.get_adaptor_descriptions()}
    assert set(descriptions) == set(names)
    local = xb.Scheduler.get_adaptor_description('local')
    assert local == descriptions['local']
    assert local.is_embedded and local.supports_batch and local.supports_interactive
    assert local.supported_properties == [] or all(
        p.name.startswith('xenon.adaptors.schedulers.local.') for p in local.supported_properties)
    ssh = descriptions['ssh']
    assert 'xenon.adaptors.schedulers.ssh.queue.pollingDelay' in {p.name for p in ssh.supported_properties}
    with pytest.raises(xe.UnknownAdaptorException, match="'nope'"):
        xb.Scheduler.get_adaptor_description('nope')


def test_unknown_adaptor_and_properties_are_refused(xb):
    with pytest.raises(xe.UnknownAdaptorException, match='nope'):
        xb.Scheduler.create('nope')
    with pytest.raises(xe.UnknownPropertyException, match='some.property'):  # local takes none
        xb.Scheduler.create('local', properties={'some.property': 1})
    listed = 'xenon.adaptors.schedulers.local.queue.pollingDelay'
    assert listed in {p.name for p in xb.Scheduler.get_adaptor_description('local').supported_properties}
    with pytest.raises(xe.UnknownPropertyException, match=listed):  # not even its own
        xb.Scheduler.create('local', properties={listed: 100})
    with pytest.raises(TypeError, match='one credential'):
        xb.Scheduler.create('local', credential=xb.DefaultCredential(),
                            default_credential=xb.DefaultCredential())
    with pytest.raises(TypeError, match='password_credential must be a PasswordCredential'):
        xb.Scheduler.create('local', password_credential='secret')


def test_scheduler_facts_and_life_cycle(xb):
    scheduler = xb.Scheduler.create('local')
    with scheduler:
        assert scheduler.is_open()
        assert scheduler in xb.Scheduler.list_schedulers()
        assert scheduler.get_adaptor_name() == 'local'
        assert scheduler.get_location() == ''
        assert scheduler.get_properties() == {}
        assert isinstance(scheduler.get_credential(), xb.DefaultCredential)
        assert scheduler.get_default_runtime() >= 0
        filesystem = scheduler.get_file_system()
        assert filesystem.get_adaptor_name() == 'file'
        assert filesystem.get_working_directory() == xb.Path(os.getcwd())
    assert scheduler not in xb.Scheduler.list_schedulers()
    default = xb.Scheduler.local_scheduler()
    assert default.get_adaptor_name() == 'local' and default.is_open()


def test_queues(local_scheduler):
    assert local_scheduler.get_queue_names() == ['single', 'multi', 'unlimited']
    assert local_scheduler.get_default_queue_name() == 'single'
    status = local_scheduler.get_queue_status('multi')
    assert isinstance(status, QueueStatus) and status.name == 'multi'
    assert status.error_type == QueueStatus.ErrorType.NONE
    assert [s.name for s in local_scheduler.get_queue_statuses()] == ['single', 'multi', 'unlimited']
    assert [s.name for s in local_scheduler.get_queue_statuses('single')] == ['single']
    with pytest.raises(xe.NoSuchQueueException, match='nope'):
        local_scheduler.get_queue_status('nope')


def test_batch_job_exit_code_and_output_files(local_scheduler, tmp_path):
    (tmp_path / 'in.txt').write_text('from stdin\n')
    description = JobDescription(
        executable='/bin/sh', arguments=['-c', 'cat; echo "out $GREETING $(pwd)"; echo err >&2; exit 3'],
        working_directory=str(tmp_path), environment={'GREETING': 'hello'}, stdin='in.txt',
        stdout='out.txt', stderr='err.txt', name='probe', queue_name='multi')
    job = local_scheduler.submit_batch_job(description)
    assert isinstance(job, Job) and job.id.startswith('local-')
    status = local_scheduler.wait_until_done(job, 30_000)
    assert status.done and not status.running and status.state == 'DONE'
    assert status.exit_code == 3 and status.error is None and status.job == job
    assert (tmp_path / 'out.txt').read_text() == f'from stdin\nout hello {tmp_path}\n'
    assert (tmp_path / 'err.txt').read_text() == 'err\n'


def test_status_is_forgotten_after_the_final_one(local_scheduler):
    job = local_scheduler.submit_batch_job(JobDescription(executable='/bin/true', queue_name='multi'))
    assert local_scheduler.wait_until_done(job, 30_000).exit_code == 0
    with pytest.raises(xe.NoSuchJobException, match=job.id):
        local_scheduler.get_job_status(job)
    [status] = local_scheduler.get_job_statuses([job])
    assert status.error_type == JobStatus.ErrorType.NOT_FOUND
    assert isinstance(status.error, xe.NoSuchJobException)


def test_running_jobs_statuses_and_cancel(local_scheduler, tmp_path):
    sleeper = JobDescription(executable='/bin/sleep', arguments=['60'], queue_name='multi')
    first = local_scheduler.submit_batch_job(sleeper)
    second = local_scheduler.submit_batch_job(sleeper)
    running = local_scheduler.wait_until_running(first, 30_000)
    assert running.running and not running.done and running.state == 'RUNNING'
    assert {first, second} <= set(local_scheduler.get_jobs())
    assert {first, second} <= set(local_scheduler.get_jobs('multi'))
    assert first not in local_scheduler.get_jobs('single')
    assert local_scheduler.get_job_status(first).running
    statuses = local_scheduler.get_job_statuses([first, second, Job('local-nope')])
    assert [s.job for s in statuses] == [first, second, Job('local-nope')]
    assert statuses[2].error_type == JobStatus.ErrorType.NOT_FOUND
    for job in (first, second):
        cancelled = local_scheduler.cancel_job(job)
        assert cancelled.done and cancelled.state == 'KILLED'
        assert cancelled.error_type == JobStatus.ErrorType.CANCELLED
        assert isinstance(cancelled.error, xe.JobCanceledException)
    assert first not in local_scheduler.get_jobs()


def test_single_queue_runs_one_job_at_a_time(local_scheduler):
    sleeper = JobDescription(executable='/bin/sleep', arguments=['60'])  # default queue 'single'
    first = local_scheduler.submit_batch_job(sleeper)
    second = local_scheduler.submit_batch_job(sleeper)
    try:
        assert local_scheduler.wait_until_running(first, 30_000).running
        waited = local_scheduler.wait_until_running(second, 1_500)
        assert not waited.running and not waited.done and waited.state == 'PENDING'
    finally:
        local_scheduler.cancel_job(second)
        local_scheduler.cancel_job(first)


def test_wait_with_timeout_returns_a_status_that_is_not_done(local_scheduler):
    job = local_scheduler.submit_batch_job(
        JobDescription(executable='/bin/sleep', arguments=['60'], queue_name='multi'))
    try:
        status = local_scheduler.wait_until_done(job, 300)
        assert not status.done
    finally:
        assert local_scheduler.cancel_job(job).done


def test_interactive_job_streams_stdin_and_output(local_scheduler):
    description = JobDescription(executable='/bin/sh',
                                 arguments=['-c', 'tr a-z A-Z; echo done >&2'],
                                 queue_name='multi')
    job, output = local_scheduler.submit_interactive_job(description, iter([b'abc\n', b'def\n']))
    assert job.id.startswith('local-')
    chunks = list(output)
    assert all(chunk.job == job for chunk in chunks)
    assert b''.join(c.stdout for c in chunks) == b'ABC\nDEF\n'
    assert b''.join(c.stderr for c in chunks) == b'done\n'
    assert local_scheduler.wait_until_done(job, 30_000).exit_code == 0


def test_missing_executable_fails_the_job_not_the_call(local_scheduler, tmp_path):
    job = local_scheduler.submit_batch_job(
        JobDescription(executable=str(tmp_path / 'no-such-program'), queue_name='multi'))
    status = local_scheduler.wait_until_done(job, 30_000)
    assert status.done and (status.exit_code != 0 or status.error is not None)


def test_run_command_collects_output_and_exit_code(local_scheduler, tmp_path):
    result = local_scheduler.run_command('/bin/sh', ['-c', 'cat; pwd; echo oops >&2; exit 5'],
                                         stdin=b'fed\n', working_directory=str(tmp_path))
    assert result == (5, f'fed\n{tmp_path}\n'.encode(), b'oops\n')
    assert local_scheduler.run_command('/bin/true').exit_code == 0
    missing = local_scheduler.run_command(str(tmp_path / 'no-such-program'))
    assert missing.exit_code == 127 and b'no-such-program' in missing.stderr
    quoted = local_scheduler.run_command('/bin/echo', ['a b', '$HOME', "it's"])
    assert quoted.stdout == b"a b $HOME it's\n"  # arguments are passed, not parsed


def test_the_output_stream_can_be_cancelled(local_scheduler):
    pending = queue.Queue()  # stdin that does not come until the test ends
    job, output = local_scheduler.submit_interactive_job(
        JobDescription(executable='/bin/cat', queue_name='multi'), iter(pending.get, None))
    try:
        output.cancel()
        assert list(output) == []
    finally:
        pending.put(None)
        assert local_scheduler.cancel_job(job).done


def test_the_start_of_an_interactive_job_is_bounded_by_the_timeout(xb, local_scheduler):
    impatient = xb.Scheduler(local_scheduler.id, local_scheduler.server, timeout=1e-6)
    with pytest.raises(xe.DeadlineExceededException, match='did not start within'):
        impatient.submit_interactive_job(JobDescription(executable='/bin/true'), [])

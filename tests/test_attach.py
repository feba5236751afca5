"""Re-attach (issue 14): jobs submitted by a process that is gone, found again by id or
through ``cluster.jobs``, on the real Slurm, the Torque wrappers and a remote profile."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import cluster
from cluster.job import records
from cluster.queue import watcher
from support import first_line_then_kill

DRIVER = textwrap.dedent('''
    import signal, sys, cluster

    def square(x):
        return x * x

    def fails(x):
        raise ValueError(f'no good: {x}')

    kw = eval(sys.argv[1])
    jobs = [cluster.Job(square, args=[i], name='sq', **kw).submit()
            for i in range(int(sys.argv[2]))]
    if sys.argv[3:]:
        jobs.append(cluster.Job(fails, args=[7], name='bad', **kw).submit())
        jobs.append(cluster.Job('echo out; echo err >&2; exit 3', name='cmd', **kw).submit())
    print(' '.join(j.id for j in jobs), flush=True)
    signal.pause()                       # killed here, with its jobs queued or running
''')

ATTACHER = textwrap.dedent('''
    import json, sys, time, cluster
    ids = sys.argv[1].split()
    start = time.monotonic()
    attached = [cluster.attach(i) for i in ids]
    attach_s = time.monotonic() - start
    values = [j.get(timeout=900) for j in attached]
    get_s = time.monotonic() - start - attach_s
    start = time.monotonic()
    listed = {j.id: j for j in cluster.jobs()}
    jobs_s = time.monotonic() - start
    print(json.dumps({'values': values, 'via_jobs': [listed[i].get(timeout=900) for i in ids],
                      'names': [listed[i].name for i in ids], 'attach_s': attach_s,
                      'get_s': get_s, 'jobs_s': jobs_s}))
''')


def _submit_and_kill(kw: dict, count: int, extra: bool = False) -> list:
    """Run a driver that submits ``count`` function jobs, then SIGKILL it; their ids."""
    line = first_line_then_kill(DRIVER, [repr(kw), str(count)] + (['extra'] if extra else []))
    ids = line.split()
    assert len(ids) == count + (2 if extra else 0), line
    return ids


SLURM = pytest.param('slurm', marks=pytest.mark.slurm)
TORQUE = pytest.param('torque', marks=pytest.mark.torque)
SGE = pytest.param('sge', marks=pytest.mark.sge)
REMOTE = pytest.param('remote-slurm', marks=[pytest.mark.slurm, pytest.mark.remote])
REMOTE_SGE = pytest.param('remote-sge', marks=[pytest.mark.sge, pytest.mark.remote])


@pytest.mark.waits
@pytest.mark.parametrize('target', [SLURM, REMOTE], indirect=True)
def test_a_killed_driver_s_50_jobs_are_collected_by_a_new_process(target, rundir, in_tmp):
    ids = _submit_and_kill(dict(target), 50)
    done = subprocess.run([sys.executable, '-c', ATTACHER, ' '.join(ids)], capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer['values'] == [i * i for i in range(50)]
    assert answer['via_jobs'] == answer['values']
    assert answer['names'][:2] == ['sq', 'sq_1']
    print(f"\n{target}: attach 50 jobs {answer['attach_s']:.3f} s, get all "
          f"{answer['get_s']:.1f} s, cluster.jobs() {answer['jobs_s']:.3f} s")


@pytest.mark.parametrize('target', [SLURM, TORQUE, SGE, REMOTE, REMOTE_SGE], indirect=True)
def test_an_attached_job_behaves_as_the_one_that_left(target, rundir, in_tmp):
    ids = _submit_and_kill(dict(target), 1, extra=True)
    square, bad, cmd = (cluster.attach(i) for i in ids)
    system = target.get('qtype') or {'remote-sge': 'sge'}.get(target['profile'], 'slurm')
    assert {job.qtype for job in (square, bad, cmd)} == {system}
    assert square.get(timeout=300) == 0
    with pytest.raises(ValueError, match='no good: 7') as raised:
        bad.get(timeout=300)
    assert 'in fails' in raised.value.remote_traceback
    assert cmd.get(timeout=300) == (3, 'out\n', 'err\n')
    assert cmd.get_exitcode() == 3 and cmd.get_stdout() == 'out\n' and not cmd.wait()
    assert bad.get_exitcode() == 1 and 'ValueError' in bad.get_stderr()
    assert records.find(cmd.id)
    cmd.clean(delete_outputs=True)
    assert records.find(cmd.id) == [] and not os.path.exists(cmd.files.submission)


def _forgotten(record: dict, job_id: str, **changes) -> str:
    """A record of a job id the scheduler never knew, with ``record``'s files."""
    forged = dict(record, id=job_id, **changes)
    forged.pop('key')
    return records.write(forged)


@pytest.mark.slurm
def test_a_job_the_scheduler_forgot_settles_from_its_files(in_tmp):
    from conftest import _require_slurm
    _require_slurm('slurm')
    job = cluster.Job('exit 0', name='seen', qtype='slurm').submit()
    assert job.wait(timeout=300)
    [record] = records.find(job.id)
    unknown = str(int(job.id) + 5_000_000)
    _forgotten(record, unknown)
    again = cluster.attach(unknown)
    assert again.wait(timeout=60) and again.get_exitcode() == 0
    never = str(int(job.id) + 5_000_001)
    files = dict(record['files'], name='never_ran')
    _forgotten(record, never, files=files, target=files)
    script = cluster.script.JobFiles(**files).submission   # written, never ended
    with open(script, 'w') as handle:
        handle.write(open(job.files.submission).read())
    start = time.monotonic()
    lost = cluster.attach(never)
    assert lost.wait(timeout=60) is False
    assert lost.info.state is cluster.batch.State.FAILED
    assert 'without an exit code' in lost.info.reason and time.monotonic() - start < 60


LOCAL_DRIVER = textwrap.dedent('''
    import signal, sys, cluster
    quick = cluster.Job('echo quick', name='quick', qtype='local').submit()
    quick.wait(60)
    slow = cluster.Job('sleep 600', name='slow', qtype='local').submit()
    print(quick.id, slow.id, flush=True)
    signal.pause()
''')


def test_a_local_job_of_a_process_that_is_gone_says_so(in_tmp):
    driver = subprocess.Popen([sys.executable, '-c', LOCAL_DRIVER], stdout=subprocess.PIPE,
                              text=True)
    try:
        quick, slow = driver.stdout.readline().split()
        with pytest.raises(cluster.JobError, match=f'local job {slow} .*runs in the job queue '
                                                   f'of process {driver.pid} .*still running'):
            cluster.attach(slow)
    finally:
        driver.kill()
        driver.wait(60)
    with pytest.raises(cluster.JobError, match=f'local job {slow} \\(slow\\) ran in process '
                                               f'{driver.pid} on .*, which has ended before '
                                               'the job finished: local jobs end with the '
                                               'process that runs them'):
        cluster.attach(slow, qtype='local')
    assert cluster.attach(quick, qtype='local').get() == (0, 'quick\n', '')
    listed = {j.id: j for j in cluster.jobs() if j.record['pid'] == driver.pid}
    assert listed[slow].info.state is cluster.batch.State.FAILED
    assert 'local jobs end with the process' in listed[slow].info.reason


def test_this_process_s_own_local_job_attaches(in_tmp):
    job = cluster.Job('echo mine', qtype='local').submit()
    assert cluster.attach(job.id, qtype='local').get(timeout=60) == (0, 'mine\n', '')


@pytest.mark.slurm
def test_jobs_lists_newest_first_with_one_status_command(in_tmp, tmp_path, monkeypatch):
    from conftest import _require_slurm
    _require_slurm('slurm')
    monkeypatch.setenv('CLUSTER_STATE_DIR', str(tmp_path / 'state'))
    done = cluster.Job('true', name='first', qtype='slurm').submit()
    done.wait(300)
    running = [cluster.Job('sleep 120', name=f'later{n}', qtype='slurm').submit()
               for n in range(3)]
    system = running[0].system
    assert all(j.id for j in running)   # recorded once the id is known
    try:
        calls = []
        real = system.statuses
        monkeypatch.setattr(system, 'statuses', lambda *a, **k: calls.append(a) or real(*a, **k))
        listed = cluster.jobs()
        assert [j.name for j in listed] == ['later2', 'later1', 'later0', 'first']
        assert len(calls) == 1
        assert listed[-1].info.state is cluster.batch.State.COMPLETED
        assert {str(j.info.state) for j in listed[:3]} <= {'pending', 'running'}
        pending = cluster.jobs(state='completed')
        assert [j.name for j in pending] == ['first']
        assert cluster.jobs(since=time.time() + 60) == []
    finally:
        for job in running:
            job.cancel()
    assert watcher(system).wait([j.id for j in running], 120)


@pytest.mark.slurm
def test_a_job_whose_profile_was_deleted_is_still_found(in_tmp):
    from conftest import _require_slurm
    from cluster import config_file
    _require_slurm('slurm')
    config_file.set_profile('short-lived', {'cores': 1, 'mem': '500MB'}, update=False)
    try:
        job = cluster.Job('echo kept', name='kept', profile='short-lived', qtype='slurm')
        job_id = job.submit().id
    finally:
        config_file.delete_profile('short-lived')
    [listed] = cluster.jobs(profile='short-lived')
    assert listed.id == job_id and listed.options['mem'] == 500
    assert cluster.attach(job_id).get(timeout=300) == (0, 'kept\n', '')


@pytest.mark.slurm
def test_a_cluster_out_of_reach_hides_no_other_job(in_tmp, tmp_path, monkeypatch):
    """A record whose remote cluster cannot be reached (nothing listens on its port) is
    listed as unknown, with the reason, beside the jobs that can be asked; its batch
    system is the recorded one, not detected again over a connection that fails."""
    from conftest import _require_slurm
    _require_slurm('slurm')
    monkeypatch.setenv('CLUSTER_STATE_DIR', str(tmp_path / 'state'))
    job = cluster.Job('true', name='here', qtype='slurm').submit()
    assert job.wait(timeout=300)
    [record] = records.find(job.id)
    _forgotten(record, str(int(job.id) + 5_000_000), name='there',
               remote={'url': 'ssh://nobody@127.0.0.1:1', 'profile': None})
    listed = {j.name: j.info for j in cluster.jobs()}
    assert listed['here'].state is cluster.batch.State.COMPLETED
    there = listed['there']
    assert there.state is cluster.batch.State.UNKNOWN, there  # never "pending"
    assert 'could not be asked' in there.reason and '127.0.0.1:1' in there.reason, there
    assert 'squeue' in there.reason  # the recorded system's own status command
    # and a job for it now says what failed, not that the batch commands are missing
    with pytest.raises(cluster.run.remote.RemoteError,
                       match='cannot run commands on nobody@127.0.0.1:1 .*Connection refused'):
        cluster.Job('true', name='new', remote='ssh://nobody@127.0.0.1:1')

"""A job's files over its life: nothing is written before the job is, a job that still
needs its files keeps them, inputs are written whole or not at all (a full disk, a killed
driver), and pickles are opened without following symlinks.

The full disk is a real 200 KB tmpfs mounted as the job directory (the suite runs as
root); the killed driver is a real subprocess SIGKILLed while it writes a payload.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest

import cluster
from cluster.script import runner as _runner
from cluster.run.errors import ClusterError, JobError
from conftest import require

DEADLINE = 60  # seconds; reached only when something is broken


def add(a, b):
    return a + b


def blob(size):
    return b'x' * size


@pytest.fixture
def small_disk(tmp_path):
    """A 200 KB tmpfs, mounted for the test and unmounted after it whatever happens."""
    require('root (to mount a tmpfs)', os.geteuid() == 0, 'run the suite as root')
    mount = tmp_path / 'small'
    mount.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=200k,mode=0700', 'tmpfs', str(mount)],
                   check=True, capture_output=True, timeout=30)
    try:
        yield mount
    finally:
        subprocess.run(['umount', str(mount)], check=True, capture_output=True, timeout=30)


# ---------------------------------------------------------------- nothing before write

def test_make_job_writes_nothing(in_tmp):
    jobs = [cluster.make_job('echo hi', qtype='local'),
            cluster.make_job(add, (1, 2), qtype='local', name='adder'),
            cluster.make_job('echo hi', qtype='slurm')]
    assert os.listdir(in_tmp) == []
    assert 'not written' in str(jobs[0])
    assert jobs[0].submit().get() == (0, 'hi\n', '')
    assert jobs[1].submit().get() == 3


@pytest.mark.remote
@pytest.mark.sshd
@pytest.mark.xenon
def test_make_job_for_a_remote_profile_opens_no_connection(remote_profiles, in_tmp):
    from cluster.run import remote
    remote.close_all()
    job = cluster.make_job(add, (2, 3), profile='remote-slurm')
    connection = job.store.connection
    assert (connection._scheduler, connection._filesystem) == (None, None)
    assert os.listdir(in_tmp) == []
    assert job.submit().get() == 5


def test_local_jobs_in_rounds_of_removed_directories(monkeypatch):
    """Each round's jobs are written in a temporary directory removed at the round's end;
    the local queue's workers must not depend on any of them."""
    for round_number in range(3):
        with tempfile.TemporaryDirectory() as directory:
            monkeypatch.chdir(directory)
            command = cluster.submit(f'echo round {round_number}', qtype='local')
            function = cluster.submit(add, (round_number, 1), qtype='local')
            assert command.get() == (0, f'round {round_number}\n', '')
            assert function.get() == round_number + 1
        monkeypatch.chdir('/')


# ---------------------------------------------------------------- clean of a live job

def test_clean_of_an_unfinished_job_refuses_and_keeps_its_files(target, in_tmp):
    job = cluster.submit('sleep 60', **target)
    with pytest.raises(JobError, match=r'wait\(\) for it, or cancel\(\) it'):
        job.clean()
    assert os.path.getsize(job.files.submission) > 0
    job.cancel()
    job.wait()
    job.clean()
    assert not os.path.exists(job.files.submission)


def test_clean_of_a_pending_local_function_job_leaves_it_runnable(in_tmp):
    gate = in_tmp / 'gate'
    os.mkfifo(gate)
    first = cluster.submit(f'read x < {gate}', qtype='local')
    second = cluster.submit(add, (1, 2), qtype='local', depends=[first])
    with pytest.raises(JobError, match='needs its files'):
        second.clean()
    with open(gate, 'w') as writer:
        writer.write('go\n')
    assert second.get() == 3
    second.clean(delete_outputs=True)
    assert not any(os.path.exists(p) for p in second.files.all())


# ---------------------------------------------------------------- full disks

@pytest.mark.parametrize('qtype', ['local', pytest.param('slurm', marks=pytest.mark.slurm)])
def test_a_payload_on_a_full_disk_names_the_path_and_leaves_nothing(small_disk, qtype):
    job = cluster.Job(len, (b'x' * 300_000,), qtype=qtype, path=str(small_disk))
    with pytest.raises(ClusterError, match='disk is full') as caught:
        job.submit()
    assert str(small_disk) in str(caught.value) and 'pickle.in' in str(caught.value)
    assert not job.submitted
    assert os.listdir(small_disk) == []
    assert cluster.clean_dir(str(small_disk)) == set()
    small = cluster.Job(len, (b'x' * 1000,), qtype=qtype, path=str(small_disk))
    assert small.submit().get() == 1000  # the same name, claimed afresh


@pytest.mark.parametrize('qtype', ['local', pytest.param('slurm', marks=pytest.mark.slurm)])
def test_a_result_that_cannot_be_written_says_the_disk_is_full(small_disk, tmp_path, qtype):
    if qtype == 'slurm':
        require('Slurm', subprocess.run(['scontrol', 'ping'], capture_output=True,
                                        text=True).stdout.count('UP') > 0,
                'bash tests/cluster/slurm_up.sh')
    job = cluster.submit(blob, (300_000,), qtype=qtype, path=str(small_disk),
                         outfile=str(tmp_path / 'out.txt'), errfile=str(tmp_path / 'err.txt'))
    with pytest.raises(JobError) as caught:
        job.get()
    message = str(caught.value)
    assert 'could not be pickled' not in message
    assert f'cannot write the result to {job.files.pickle_out}: the disk is full' in message
    assert not [e for e in os.listdir(small_disk) if e.endswith(_runner.TMP_SUFFIX)]


DRIVER = textwrap.dedent('''
    import os, sys
    import cluster
    real_fdopen = os.fdopen

    class Stalls:
        """A file whose big write stops halfway: the driver is killed right there."""
        def __init__(self, handle):
            self.handle = handle
        def write(self, data):
            if len(data) < 100_000:
                return self.handle.write(data)
            self.handle.write(data[:len(data) // 2])
            self.handle.flush()
            print('mid-write', flush=True)
            sys.stdin.readline()  # never returns: the test kills this process
        def __getattr__(self, name):
            return getattr(self.handle, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

    os.fdopen = lambda fd, *args, **kwds: Stalls(real_fdopen(fd, *args, **kwds))
    cluster.Job(len, (b'x' * 300_000,), qtype=sys.argv[2], path=sys.argv[1]).write()
''')


@pytest.mark.parametrize('qtype', ['local', 'slurm'])
def test_a_driver_killed_mid_write_leaves_no_truncated_payload(tmp_path, qtype):
    jobs = tmp_path / 'jobs'
    driver = subprocess.Popen([sys.executable, '-c', DRIVER, str(jobs), qtype],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([driver.stdout], [], [], DEADLINE)
        assert ready and driver.stdout.readline() == 'mid-write\n'
        driver.send_signal(signal.SIGKILL)
        assert driver.wait(DEADLINE) == -signal.SIGKILL
    finally:
        driver.kill()
        driver.wait()
    files = cluster.script.JobFiles(str(jobs), 'len', qtype=qtype)
    assert not os.path.exists(files.pickle_in)
    assert not os.path.exists(files.function_py)
    left = set(os.listdir(jobs))
    assert left, 'the claim and a temporary file stay until clean_dir'
    deleted = cluster.clean_dir(str(jobs))
    assert {os.path.basename(p) for p in deleted} == left
    assert os.listdir(jobs) == []


# ---------------------------------------------------------------- opening pickles

def test_a_payload_behind_a_symlink_is_refused(in_tmp):
    job = cluster.make_job(add, (1, 2), qtype='local').write()
    real = in_tmp / 'elsewhere.pickle'
    os.rename(job.files.pickle_in, real)
    os.symlink(real, job.files.pickle_in)
    assert _runner.run_files(job.files.pickle_in, job.files.pickle_out) == 1
    with pytest.raises(_runner.UnsafeFileError, match='symbolic link'):
        _runner.load_call(job.files.pickle_in)


def test_a_payload_that_is_a_fifo_is_refused_without_blocking(in_tmp):
    fifo = in_tmp / 'payload.pickle.in'
    os.mkfifo(fifo, 0o600)
    code = (f'import cluster.script.runner as r\ntry:\n    r.load_call({str(fifo)!r})\n'
            f'except r.UnsafeFileError as exc:\n    print(exc)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=DEADLINE)
    assert 'not a regular file' in out.stdout, out.stderr

"""A remote job's files, against the real test sshd, Slurm and xenon-grpc: local copies
never land on a user's file, the remote folders and results are trusted only after the
remote side was checked, and a refused submission leaves nothing behind.

The remote user's files are on this machine, so the tests (root) tamper with them
directly, as another user of the cluster could.
"""
from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

import cluster
from cluster import config_file
from cluster.run.errors import JobError
from cluster.run.remote import RemotePathError, RemotePythonError
from cluster.run.remote.store import JOBS_FOLDER, local_dir_tag
from conftest import REMOTE_MARKS, remote_profile, remote_rundir

pytestmark = [*REMOTE_MARKS, pytest.mark.slurm]


def add(a, b=0):
    return a + b


def jobs_parent(env, directory) -> Path:
    """The remote folder of the jobs written from a local ``directory``."""
    return Path(env['CLUSTER_TEST_REMOTE_WORKDIR']) / JOBS_FOLDER / local_dir_tag(str(directory))


def make_remote_dir(env, path: Path, mode: int, owner: str) -> None:
    """Make the folder ``path`` (owner, mode) below the remote user's jobs folder."""
    user = pwd.getpwnam(env['CLUSTER_TEST_SSH_USER'])
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700)
        os.chown(path.parent, user.pw_uid, user.pw_gid)
    path.mkdir()
    other = pwd.getpwnam(owner)
    os.chown(path, other.pw_uid, other.pw_gid)
    os.chmod(path, mode)


def test_an_outfile_outside_the_job_directory_never_overwrites_a_local_file(
        remote_profiles, in_tmp):
    precious = in_tmp / 'samples.csv'
    precious.write_text('my data\n')
    rundir = remote_rundir(remote_profiles)
    job = cluster.submit('echo from-the-job', profile='remote-slurm', dir=str(rundir),
                         outfile=str(rundir / 'samples.csv'))
    assert job.get_stdout() == 'from-the-job\n'
    assert precious.read_text() == 'my data\n'
    copy = job.store.local(job.files, str(rundir / 'samples.csv'))
    assert job.files.is_copy(os.path.basename(copy)) and os.path.exists(copy)
    job.clean(delete_outputs=True)
    assert precious.read_text() == 'my data\n'
    assert not os.path.exists(copy) and not (rundir / 'samples.csv').exists()


def test_an_open_remote_jobs_folder_is_refused(remote_profiles, in_tmp):
    parent = jobs_parent(remote_profiles, in_tmp)
    make_remote_dir(remote_profiles, parent, 0o777, remote_profiles['CLUSTER_TEST_SSH_USER'])
    with pytest.raises(RemotePathError, match=f'{parent}.*group or others may write'):
        cluster.submit('true', profile='remote-slurm')
    assert os.listdir(parent) == [] and os.listdir(in_tmp) == []


def test_a_remote_jobs_folder_of_another_user_is_refused(remote_profiles, in_tmp):
    parent = jobs_parent(remote_profiles, in_tmp)
    make_remote_dir(remote_profiles, parent, 0o755, 'root')
    with pytest.raises(RemotePathError, match=f"{parent}.*belongs to 'root'"):
        cluster.submit('true', profile='remote-slurm')
    assert os.listdir(in_tmp) == []


def test_a_result_others_could_have_written_is_refused(remote_profiles, in_tmp):
    job = cluster.submit(add, (1, 2), profile='remote-slurm')
    assert job.wait()
    os.chmod(job.target.pickle_out, 0o666)   # as another user of the cluster could
    with pytest.raises(JobError, match=f'refusing to trust {job.target.pickle_out}'):
        job.get()
    os.chmod(job.target.pickle_out, 0o600)
    os.chmod(job.target.directory, 0o777)
    with pytest.raises(JobError, match=f'{job.target.directory}.*group or others may write'):
        job.get()
    os.chmod(job.target.directory, 0o700)
    assert job.get() == 3


def test_a_submission_refused_for_a_missing_dill_leaves_nothing(remote_profiles, in_tmp):
    python = remote_profiles['CLUSTER_TEST_REMOTE_PYTHON_NODILL']
    config_file.set_profile('no-dill-files', remote_profile(remote_profiles, 'slurm',
                                                            python=python), update=False)
    job = cluster.Job(add, (1,), profile='no-dill-files')
    with pytest.raises(RemotePythonError, match='dill'):
        job.submit()
    assert os.listdir(in_tmp) == []
    parent = jobs_parent(remote_profiles, in_tmp)
    assert not parent.exists() or os.listdir(parent) == []
    assert cluster.clean_dir(str(in_tmp), profile='no-dill-files') == set()


def test_a_remote_file_that_is_gone_leaves_no_copy_of_ours_and_no_file_of_yours_goes(
        remote_profiles, in_tmp):
    from cluster.queue.outcomes import read_exitcode
    rundir = remote_rundir(remote_profiles)
    chosen = rundir / 'chosen.out'
    job = cluster.submit('echo hello', profile='remote-slurm', dir=str(rundir),
                         outfile=str(chosen))
    assert job.wait() and job.get_stdout() == 'hello\n'
    store, files = job.store, job.files
    assert read_exitcode(files, store) == 0 and os.path.exists(files.exitcode)
    copy = store.local(files, str(chosen))
    assert files.is_copy(os.path.basename(copy)) and os.path.exists(copy)
    # what a requeued attempt does at its start, before SIGKILL ends it
    os.unlink(job.target.exitcode)
    os.unlink(chosen)
    assert read_exitcode(files, store) is None and not os.path.exists(files.exitcode)
    assert job.get_stdout() == '' and not os.path.exists(copy)
    # a user's files where a target of the job's remote directory maps are never deleted
    mine = in_tmp / 'notes.txt'
    mine.write_text('mine\n')
    store.pull(files, [os.path.join(job.target.directory, 'notes.txt')])
    assert mine.read_text() == 'mine\n'
    script = in_tmp / 'run.sh'
    script.write_text('#!/bin/bash\necho run\n')
    placed, target, _ = store.place_script(str(script), 'slurm')
    os.unlink(target.script)
    store.pull(placed, [target.script])
    assert script.read_text() == '#!/bin/bash\necho run\n'
    store.remove(placed, [target.script])
    job.clean(delete_outputs=True)

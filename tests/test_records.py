"""Job records (issue 14): what every submitted job leaves in the state directory, and how
records are refused when they cannot be trusted."""
from __future__ import annotations

import json
import os
import pickle
import pwd
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import cluster
from cluster import config_file
from cluster.job import records
from cluster.job.records import RecordError
from cluster.run.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A state directory of the test's own."""
    path = tmp_path / 'state'
    monkeypatch.setenv('CLUSTER_STATE_DIR', str(path))
    return path


def test_a_submitted_job_writes_a_private_record(qtype, state, in_tmp):
    job = cluster.Job('echo recorded', name='rec', qtype=qtype, mem='1GB').submit()
    assert job.get(timeout=120)[0] == 0
    [record] = records.find(job.id)
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    path = state / f'{record["key"]}.json'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    on_disk = json.loads(path.read_text())
    assert on_disk['schema'] == 'cluster.job-record' and on_disk['version'] == 1
    assert on_disk['id'] == job.id and on_disk['system'] == qtype
    assert on_disk['kind'] == 'command' and on_disk['command'] == 'echo recorded'
    assert on_disk['files']['name'] == job.name and on_disk['outfile'] == job.outfile
    assert on_disk['options']['mem'] == 1024 and on_disk['remote'] is None
    assert on_disk['pid'] == os.getpid() and abs(on_disk['submitted'] - time.time()) < 120
    assert job.record_key == record['key']


def test_a_remote_record_holds_the_address_and_no_credential(remote_profiles, state, in_tmp,
                                                             monkeypatch):
    monkeypatch.setenv('CLUSTER_PASSWORD_REMOTE_SLURM', 'not-a-real-secret')
    job = cluster.Job('echo far', profile='remote-slurm').submit()
    assert job.get(timeout=120)[0] == 0
    [record] = records.find(job.id)
    text = (state / f'{record["key"]}.json').read_text()
    env = remote_profiles
    assert record['remote']['address'] == (f'{env["CLUSTER_TEST_SSH_USER"]}@'
                                           f'{env["CLUSTER_TEST_SSH_HOST"]}:'
                                           f'{env["CLUSTER_TEST_SSH_PORT"]}')
    assert record['remote']['profile'] == 'remote-slurm'
    assert record['target']['directory'].startswith(env['CLUSTER_TEST_REMOTE_WORKDIR'])
    assert 'not-a-real-secret' not in text and env['CLUSTER_TEST_SSH_KEY'] not in text


WRITER = textwrap.dedent('''
    import os, sys, time
    from cluster.job import records
    go, me, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        pass                                  # start together: spin until the go file
    for n in range(count):
        records.write(records.new(id=f'{me}{n}', system='slurm', name=f'w{me}', kind='command',
                                  command='true', files={}, target={}, outfile='o',
                                  errfile='e'))
        if sys.argv[4:]:
            [key] = [r['key'] for r in records.find('shared')]
            records.modify(key, lambda r: r.update(attempts=r['attempts'] + 1))
''')


def _writers(tmp_path, state, count, update=False, processes=4):
    go = tmp_path / 'go'
    env = dict(os.environ, CLUSTER_STATE_DIR=str(state))
    started = [subprocess.Popen([sys.executable, '-c', WRITER, str(go), f'p{n}-', str(count)]
                                + (['update'] if update else []), env=env)
               for n in range(processes)]
    go.touch()
    assert [p.wait(timeout=300) for p in started] == [0] * processes


def test_concurrent_writers_lose_no_record(tmp_path, state):
    _writers(tmp_path, state, 150)
    found = {records.load(k)['id'] for k in records.keys()}
    assert found == {f'p{p}-{n}' for p in range(4) for n in range(150)}
    assert not [n for n in os.listdir(state) if n.endswith('.part')]


def test_concurrent_updates_lose_no_change(tmp_path, state):
    shared = records.new(id='shared', system='slurm', name='s', kind='command', command='true',
                         files={}, target={}, outfile='o', errfile='e')
    key = records.write(shared)
    _writers(tmp_path, state, 40, update=True)
    assert records.load(key)['attempts'] == 1 + 4 * 40
    assert records.update(key, attempts=7)['attempts'] == records.load(key)['attempts'] == 7


def _one(state) -> str:
    return records.write(records.new(id='77', system='slurm', name='x', kind='command',
                                     command='true', files={}, target={}, outfile='o',
                                     errfile='e'))


def test_a_corrupt_record_is_refused_with_its_path(state):
    key = _one(state)
    path = state / f'{key}.json'
    path.write_text('{"schema": "cluster.job-record", "version": 1, "id": ')
    with pytest.raises(RecordError, match=f'{path} is corrupt'):
        records.find('77')
    path.write_text(json.dumps({'schema': 'cluster.job-record', 'version': 1, 'id': 77}))
    with pytest.raises(RecordError, match="corrupt: 'id' is 77"):
        records.load(key)
    path.write_text(json.dumps(dict(records.new(id='77', system='slurm', name='x',
                                                kind='command', command='true', files={},
                                                target={}, outfile='o', errfile='e'),
                                    version=99)))
    with pytest.raises(RecordError, match='version 99; this cluster reads versions 1 to 2'):
        cluster.attach('77')


def test_a_pickle_in_place_of_a_record_is_never_unpickled(state, tmp_path):
    key = _one(state)
    marker = tmp_path / 'unpickled'

    class Boom:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))
    (state / f'{key}.json').write_bytes(pickle.dumps(Boom()))
    with pytest.raises(RecordError, match='corrupt'):
        cluster.attach('77')
    assert not marker.exists()


def test_a_foreign_or_open_record_is_refused(state, tmp_path):
    key = _one(state)
    path = state / f'{key}.json'
    other = pwd.getpwnam('clustertest')
    os.chown(path, other.pw_uid, other.pw_gid)
    with pytest.raises(RecordError, match=f'refusing the record {path}: .*owner {other.pw_uid}'):
        cluster.attach('77')
    os.chown(path, os.getuid(), os.getgid())
    os.chmod(path, 0o644)
    with pytest.raises(RecordError, match='readable by nobody else'):
        records.load(key)
    os.chmod(path, 0o600)
    assert records.load(key)['id'] == '77'
    path.unlink()
    decoy = tmp_path / 'decoy.json'
    decoy.write_text('{}')
    os.chmod(decoy, 0o600)
    path.symlink_to(decoy)
    with pytest.raises(RecordError, match='symbolic link'):
        records.load(key)


def test_a_state_directory_others_may_write_is_refused(state):
    _one(state)
    os.chmod(state, 0o777)
    with pytest.raises(RecordError, match='must be yours and closed to others'):
        records.find('77')


def test_old_records_are_pruned_after_the_retention(state, private_config):
    keep, old = _one(state), records.write(records.new(
        id='78', system='slurm', name='x', kind='command', command='true', files={},
        target={}, outfile='o', errfile='e'))
    month_ago = time.time() - 31 * 86400
    os.utime(state / f'{old}.json', (month_ago, month_ago))
    assert records.prune() == [old]
    assert records.keys() == [keep]
    with pytest.raises(ConfigError, match=r'\[records\] retention_days: .*a number of days'):
        config_file.set('records', 'retention_days', -1)
    config_file.set('records', 'retention_days', 0.5)
    try:
        hours_ago = time.time() - 13 * 3600
        os.utime(state / f'{keep}.json', (hours_ago, hours_ago))
        assert records.prune() == [keep]
    finally:
        config_file.delete('records', 'retention_days')


def test_a_cleaned_job_takes_its_record_along(state, in_tmp):
    job = cluster.Job('echo gone', qtype='local').submit()
    job.wait(60)
    assert records.find(job.id)
    job.clean(delete_outputs=True)
    assert records.find(job.id) == []


@pytest.mark.slurm
def test_a_directory_cleaned_by_cluster_clean_takes_the_records_along(state, in_tmp):
    from conftest import _require_slurm
    _require_slurm('slurm')
    first, second = (cluster.Job('true', name=n, qtype='slurm').submit() for n in 'ab')
    assert first.wait(300) and second.wait(300)
    cluster.clean_dir(str(in_tmp))
    with pytest.raises(RecordError, match=f'job {first.id} \\(a\\) was cleaned: its files'):
        cluster.attach(first.id)
    assert records.find(first.id) == []
    assert second.id not in [j.id for j in cluster.jobs()] and records.find(second.id) == []

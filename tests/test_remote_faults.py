"""Faults on the remote path, injected for real: a killed Xenon JVM during submissions,
killed sshd session processes under running jobs.

Each test runs on a xenon-grpc server of its own (and a key path of its own, hence a
connection of its own), so that what it kills is only its own: the test sshd and Slurm
are shared with other test runs.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid

import psutil
import pytest

import cluster
from cluster import config_file
from cluster.run import remote
from cluster.batch._submit import given_name
from conftest import REMOTE_MARKS, remote_profile
from test_remote import private_servers  # noqa: F401 - a fixture

LIVE = [*REMOTE_MARKS, pytest.mark.slurm]
pytestmark = LIVE


@pytest.fixture(scope='module')
def env(remote_profiles):
    return remote_profiles


@pytest.fixture
def own_endpoint(env, tmp_path):
    """A profile whose key path is its own: its connection is nobody else's."""
    key = tmp_path / 'key'
    shutil.copy(env['CLUSTER_TEST_SSH_KEY'], key)
    os.chmod(key, 0o600)
    name = f'faults-{uuid.uuid4().hex[:6]}'
    config_file.set_profile(name, remote_profile(env, 'slurm', key=str(key)), update=False)
    endpoint = remote.from_profile(name)
    yield name, endpoint
    remote.forget(endpoint)


def connect_with_servers(endpoint, private_servers):  # noqa: F811
    """The endpoint's connection on private servers; a dead one is replaced by a new one."""
    servers = [private_servers()]

    def factory(dead):
        if dead is not None:
            servers.append(private_servers())
        return servers[-1]
    return remote.connect(endpoint, server_factory=factory), servers


def ssh_sessions(server, port: int):
    """The sshd processes serving the TCP connections of ``server``'s JVM."""
    jvm = psutil.Process(server.process.pid)
    ours = {c.laddr.port for p in [jvm, *jvm.children(recursive=True)]
            for c in p.net_connections('tcp') if c.raddr and c.raddr.port == port}
    found = []
    for process in psutil.process_iter(['name']):
        if 'sshd' not in (process.info['name'] or ''):
            continue
        try:
            if any(c.laddr and c.laddr.port == port and c.raddr and c.raddr.port in ours
                   for c in process.net_connections('tcp')):
                found.append(process)
        except psutil.Error:
            continue
    return found


def kill_sessions(server, port: int) -> int:
    """SIGKILL the sshd session processes of ``server`` (the listener stays up)."""
    sessions = ssh_sessions(server, port)
    for process in sessions:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(sessions, timeout=10)
    return len(sessions)




class TestKilledSessions:
    def test_wait_and_get_recover_after_the_sshd_sessions_are_killed(
            self, env, own_endpoint, in_tmp, private_servers):  # noqa: F811
        name, endpoint = own_endpoint
        connection, servers = connect_with_servers(endpoint, private_servers)
        port = int(env['CLUSTER_TEST_SSH_PORT'])
        command = cluster.submit('sleep 3; echo survived', profile=name)
        value = cluster.submit(add, (40, 2), profile=name)
        assert command.id and value.id       # both submitted before the sessions die
        killed = kill_sessions(servers[0], port)
        assert killed >= 2                   # the ssh scheduler's and the sftp session
        started = time.monotonic()
        code, out, _ = connection.run(['echo', 'back'])
        recovery = time.monotonic() - started
        assert (code, out) == (0, 'back\n')
        assert recovery < 5.0, f'recovered after {recovery:.2f} s'
        assert command.get() == (0, 'survived\n', '')
        assert value.get() == 42
        assert connection.sessions_reopened >= 1
        assert connection.reconnects == 0 and len(servers) == 1   # the server lived on
        print(f'recovered {recovery:.2f} s after {killed} sshd session processes died')


def add(a, b=0):
    return a + b


def sacct_names(names, since: str):
    """Rows of sacct by the job names given (every user; a submission's unique suffix
    taken off), for the jobs submitted since ``since``."""
    result = subprocess.run(['sacct', '-a', '-n', '-X', '-P', '-o', 'JobName', '-S', since],
                            capture_output=True, text=True, timeout=60, check=True)
    counts = dict.fromkeys(names, 0)
    for line in result.stdout.splitlines():
        name = given_name(line.strip())
        if name in counts:
            counts[name] += 1
    return counts


class TestKilledServer:
    #: runs of JOBS submissions, one JVM kill each (CLUSTER_FAULT_RUNS for more figures)
    RUNS = int(os.environ.get('CLUSTER_FAULT_RUNS', '3'))
    JOBS = 20

    @pytest.mark.waits
    def test_submissions_are_never_refused_or_doubled_when_the_jvm_is_killed(
            self, own_endpoint, in_tmp, private_servers):  # noqa: F811
        name, endpoint = own_endpoint
        connection, servers = connect_with_servers(endpoint, private_servers)
        since = time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(time.time() - 60))
        tag = uuid.uuid4().hex[:6]
        rng = random.Random(tag)
        failed, names, jobs = [], [], []
        for run in range(self.RUNS):
            assert connection.run(['true'])[0] == 0     # the run's server is up
            server = servers[-1]
            at = rng.randrange(2, self.JOBS - 2)
            killer = None
            for i in range(self.JOBS):
                job_name = f'kill{tag}-{run}-{i}'
                names.append(job_name)
                try:
                    jobs.append(cluster.submit('true', name=job_name, profile=name))
                except Exception as exc:  # noqa: BLE001 - counted: no failure is right here
                    failed.append((run, job_name, f'{type(exc).__name__}: {exc}'))
                if i == at:    # the JVM dies while the next submissions are under way
                    group = os.getpgid(server.process.pid)
                    killer = threading.Timer(rng.uniform(0.0, 0.5), os.killpg,
                                             (group, signal.SIGKILL))
                    killer.start()
            killer.join()
            server.process.wait(30)           # gone for good before the next run
            for job in jobs:
                if job.name.startswith(f'kill{tag}-{run}-'):
                    try:
                        assert job.id
                    except Exception as exc:  # noqa: BLE001 - counted
                        failed.append((run, job.name, f'{type(exc).__name__}: {exc}'))
        deadline = time.monotonic() + 120
        # counted by the names the jobs took: a job whose remote directory was made by a
        # server that died before answering claims the next name (``_1``) on the new one
        names = [job.name for job in jobs]
        while True:     # slurmdbd records a job a moment after sbatch returns
            counts = sacct_names(names, since)
            if all(counts.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        doubled = {n: c for n, c in counts.items() if c > 1}
        print(f'{self.RUNS} runs of {self.JOBS}: runs with a refusal '
              f'{len({f[0] for f in failed})}, runs with a double submission '
              f'{len({n.split("-")[1] for n in doubled})}; refused {len(failed)}, '
              f'doubled {len(doubled)}')
        assert not failed, f'phantom refusals: {failed}'
        assert not doubled, f'submitted more than once: {doubled}'
        assert all(c == 1 for c in counts.values()), counts
        assert len(servers) == self.RUNS + 1 and connection.reconnects == self.RUNS
        for job in jobs:
            assert job.get() == (0, '', '')

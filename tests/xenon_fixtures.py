"""Fixtures of the xenon_backend tests: one real xenon-grpc server per session, the test sshd.

Import them into a test module with ``from xenon_fixtures import *``. Without java, the
jar or the stubs (or without the test sshd for the ``sshd`` tests) the tests are
skipped on a workstation and FAIL when the environment variable CI is set.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import Dict, Iterator

import pytest

IN_CI = bool(os.environ.get('CI'))
SSHD_ENV_FILE = os.environ.get('CLUSTER_TEST_SSHD_ENV', '/var/lib/cluster-test/sshd.env')
SSH_PROPERTIES = {'xenon.adaptors.schedulers.ssh.strictHostKeyChecking': 'false',
                  'xenon.adaptors.schedulers.ssh.loadKnownHosts': 'false',
                  'xenon.adaptors.schedulers.ssh.queue.pollingDelay': '100'}
SFTP_PROPERTIES = {'xenon.adaptors.filesystems.sftp.strictHostKeyChecking': 'false',
                   'xenon.adaptors.filesystems.sftp.loadKnownHosts': 'false'}

__all__ = ['IN_CI', 'require', 'xenon_missing', 'xenon_session', 'xb', 'local_scheduler',
           'file_fs', 'sshd', 'ssh_credential', 'ssh_scheduler', 'sftp_fs', 'wait_for',
           'SSH_PROPERTIES', 'SFTP_PROPERTIES', 'xenon_tls_dir']


def require(component: str, problem: str, how: str) -> None:
    """Skip (workstation) or fail (CI) when ``problem`` says a real component is missing."""
    if not problem:
        return
    message = f'{component} is not available ({problem}); {how}'
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def xenon_missing() -> str:
    """What is missing to run the real server, or '' when nothing is."""
    from xenon_backend import build
    if not (shutil.which('java') or os.environ.get('JAVA_HOME')):
        return 'java is not installed'
    try:
        build.find_jar()
    except build.BuildError as exc:
        return str(exc)
    try:
        from xenon_backend import _stubs
        _stubs.modules()
    except Exception as exc:  # noqa: BLE001
        return str(exc)
    return ''


def wait_for(condition, timeout: float = 30.0, interval: float = 0.05, what: str = 'condition'):
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f'timed out after {timeout} s waiting for {what}')
        time.sleep(interval)


@pytest.fixture(scope='session')
def xenon_tls_dir(tmp_path_factory) -> Path:
    """A private TLS directory for the run (the user's own one is left alone)."""
    return tmp_path_factory.mktemp('xenon') / 'tls'


@pytest.fixture(scope='session')
def xenon_session(xenon_tls_dir) -> Iterator:
    """The default server of the test run, started once, stopped at the end."""
    require('xenon-grpc', xenon_missing(), 'run bash scripts/setup_xenon.sh')
    import xenon_backend
    old = os.environ.get('CLUSTER_XENON_TLS_DIR')
    os.environ['CLUSTER_XENON_TLS_DIR'] = str(xenon_tls_dir)
    server = xenon_backend.init()
    yield server
    xenon_backend.shutdown()
    if old is None:
        os.environ.pop('CLUSTER_XENON_TLS_DIR', None)
    else:
        os.environ['CLUSTER_XENON_TLS_DIR'] = old


@pytest.fixture
def xb(xenon_session):
    """The ``xenon_backend`` module, with the session's server as its default."""
    import xenon_backend
    if xenon_backend.default_server() is not xenon_session:
        pytest.fail('the default server was replaced during the run')
    return xenon_backend


@pytest.fixture(scope='module')
def local_scheduler(xenon_session):
    import xenon_backend
    scheduler = xenon_backend.Scheduler.create('local', server=xenon_session)
    yield scheduler
    scheduler.close()


@pytest.fixture(scope='module')
def file_fs(xenon_session):
    import xenon_backend
    filesystem = xenon_backend.FileSystem.create('file', server=xenon_session)
    yield filesystem
    filesystem.close()


def _read_env_file(path: str) -> Dict[str, str]:
    values = {}
    with open(path) as handle:
        for line in handle:
            name, sep, value = line.strip().partition('=')
            if sep:
                values[name] = value
    return values


@pytest.fixture(scope='session')
def sshd() -> Dict[str, str]:
    """Settings of the test sshd (host, port, user, key, known_hosts)."""
    how = 'run bash tests/cluster/sshd_up.sh'
    if not os.path.isfile(SSHD_ENV_FILE):
        require('the test sshd', f'{SSHD_ENV_FILE} is missing', how)
    env = _read_env_file(SSHD_ENV_FILE)
    host, port = env['CLUSTER_TEST_SSH_HOST'], int(env['CLUSTER_TEST_SSH_PORT'])
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError as exc:
        require('the test sshd', f'nothing listens on {host}:{port}: {exc}', how)
    if not os.access(env['CLUSTER_TEST_SSH_KEY'], os.R_OK):
        require('the test sshd', f'cannot read {env["CLUSTER_TEST_SSH_KEY"]}', how + ' as root')
    return {'host': host, 'port': str(port), 'user': env['CLUSTER_TEST_SSH_USER'],
            'key': env['CLUSTER_TEST_SSH_KEY'], 'location': f'{host}:{port}',
            'known_hosts': env.get('CLUSTER_TEST_SSH_KNOWN_HOSTS', '')}


@pytest.fixture(scope='session')
def ssh_credential(sshd):
    import xenon_backend
    return xenon_backend.CertificateCredential(certfile=sshd['key'], username=sshd['user'])


@pytest.fixture(scope='session')
def ssh_scheduler(xenon_session, sshd, ssh_credential):
    """One ssh scheduler for the whole run: each closed one leaks an SSH connection."""
    import xenon_backend
    scheduler = xenon_backend.Scheduler.create('ssh', sshd['location'], SSH_PROPERTIES,
                                               ssh_credential, server=xenon_session, timeout=60)
    yield scheduler
    scheduler.close()


@pytest.fixture(scope='session')
def sftp_fs(xenon_session, sshd, ssh_credential):
    import xenon_backend
    filesystem = xenon_backend.FileSystem.create('sftp', sshd['location'], SFTP_PROPERTIES,
                                                 ssh_credential, server=xenon_session, timeout=60)
    yield filesystem
    filesystem.close()

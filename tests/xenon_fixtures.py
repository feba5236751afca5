"""Fixtures of the xenon_backend tests: one real xenon-grpc server per run, the test sshd.

A test module uses them with ``pytest_plugins = ['xenon_fixtures']`` (a plugin, so
session fixtures really are started once per run); helpers live in xenon_helpers.py.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Dict, Iterator

import pytest

from xenon_helpers import (SFTP_PROPERTIES, SSH_PROPERTIES, SSHD_ENV_FILE, read_env_file,
                           require, xenon_missing)


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
    server = xenon_backend.init(log_level=os.environ.get('XENON_TEST_LOG_LEVEL', 'WARNING'))
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


@pytest.fixture(scope='session')
def sshd() -> Dict[str, str]:
    """Settings of the test sshd (host, port, user, key, known_hosts)."""
    how = 'run bash tests/cluster/sshd_up.sh'
    if not os.path.isfile(SSHD_ENV_FILE):
        require('the test sshd', f'{SSHD_ENV_FILE} is missing', how)
    env = read_env_file(SSHD_ENV_FILE)
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

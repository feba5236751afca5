"""Shared fixtures: a private ~/.cluster for the whole run, and the batch systems to test on."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

IN_CI = bool(os.environ.get('CI'))


@pytest.fixture(scope='session', autouse=True)
def private_config(tmp_path_factory):
    """Point CLUSTER_CONFIG at a fresh file with a short poll interval for every test."""
    path = tmp_path_factory.mktemp('config') / 'cluster.ini'
    path.write_text('[queue]\nqueue_update = 0.2\n')
    old = os.environ.get('CLUSTER_CONFIG')
    os.environ['CLUSTER_CONFIG'] = str(path)
    yield str(path)
    if old is None:
        os.environ.pop('CLUSTER_CONFIG', None)
    else:
        os.environ['CLUSTER_CONFIG'] = old


def require(component: str, ready: bool, how: str) -> None:
    """Fail in CI when a real component is missing (never skip there); skip elsewhere."""
    if ready:
        return
    message = f'{component} is not running; start it with {how}'
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def slurm_ready() -> bool:
    if not shutil.which('scontrol'):
        return False
    return subprocess.run(['scontrol', 'ping'], capture_output=True, text=True,
                          timeout=20).stdout.count('UP') > 0


@pytest.fixture(params=['local',
                        pytest.param('slurm', marks=pytest.mark.slurm),
                        pytest.param('torque', marks=pytest.mark.torque)])
def qtype(request):
    """Each Job API test runs on every batch system the suite has started."""
    if request.param in ('slurm', 'torque'):
        require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
        if request.param == 'torque':
            require('the Torque wrappers', bool(shutil.which('qsub')),
                    'bash tests/cluster/slurm_up.sh (package slurm-wlm-torque)')
    return request.param


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test inside its own temporary directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path

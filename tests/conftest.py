"""Shared fixtures: a private ~/.cluster for the whole run, and the batch systems to test on."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Dict, Iterator

import pytest

from support import read_env_file, require  # noqa: F401 (test modules import require here)


#: test modules that never touch Slurm: the Xenon client, and Grid Engine with its own daemons
APART_MODULES = ('test_xenon_', 'test_sge')
#: the Xenon SFTP tests run in the ``alone`` lane, after the main run, one at a time: twice
#: under the main run's full load xenon-grpc's SFTP client stopped answering (a call on one
#: filesystem, then every later one, until MINA's idle timeout closed it after 10 minutes)
QUIET_MODULE = 'test_xenon_ssh.py'


def pytest_collection_modifyitems(config, items):
    """Mark ``apart`` every test that never touches Slurm, which scripts/test.sh runs beside
    the others: the modules above, and each test on a Grid Engine target only; and mark
    ``alone`` the tests of :data:`QUIET_MODULE`."""
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        if item.path.name.startswith(APART_MODULES) or (
                'sge' in marks and not marks & {'slurm', 'torque'}):
            item.add_marker(pytest.mark.apart)
        if item.path.name == QUIET_MODULE:
            item.add_marker(pytest.mark.alone)


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


@pytest.fixture(scope='session', autouse=True)
def private_records(tmp_path_factory):
    """Point CLUSTER_STATE_DIR at a fresh directory: the job records of the run go there
    (and to the processes the tests start), never to the user's own."""
    path = tmp_path_factory.mktemp('state') / 'jobs'
    old = os.environ.get('CLUSTER_STATE_DIR')
    os.environ['CLUSTER_STATE_DIR'] = str(path)
    yield str(path)
    if old is None:
        os.environ.pop('CLUSTER_STATE_DIR', None)
    else:
        os.environ['CLUSTER_STATE_DIR'] = old


def slurm_ready() -> bool:
    if not shutil.which('scontrol'):
        return False
    return subprocess.run(['scontrol', 'ping'], capture_output=True, text=True,
                          timeout=20).stdout.count('UP') > 0


def _require_slurm(qtype: str) -> None:
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    if qtype == 'torque':
        require('the Torque wrappers', bool(shutil.which('qsub')),
                'bash tests/cluster/slurm_up.sh (package slurm-wlm-torque)')


def use_sge(monkeypatch) -> Dict[str, str]:
    """Reach the test Grid Engine from this process: its SGE_ROOT, ports and bin first on
    PATH (for this test only); fails when strict if tests/cluster/sge_up.sh has not run."""
    from support import sge_env
    env = sge_env()
    for name in ('SGE_ROOT', 'SGE_CELL', 'SGE_QMASTER_PORT', 'SGE_EXECD_PORT', 'PATH'):
        monkeypatch.setenv(name, env[name])
    return env


@pytest.fixture(params=['local',
                        pytest.param('slurm', marks=pytest.mark.slurm),
                        pytest.param('torque', marks=pytest.mark.torque),
                        pytest.param('sge', marks=pytest.mark.sge)])
def qtype(request):
    """Each batch-system test runs on every batch system the suite has started."""
    if request.param in ('slurm', 'torque'):
        _require_slurm(request.param)
    if request.param == 'sge':
        use_sge(request.getfixturevalue('monkeypatch'))
    return request.param


# -- remote clusters: the test sshd on 127.0.0.1, the real Slurm behind it, Xenon ----------
STATE = os.environ.get('CLUSTER_TEST_STATE', '/var/lib/cluster-test')
REMOTE_HOW = ('bash scripts/setup_xenon.sh; bash tests/cluster/slurm_up.sh; '
              'bash tests/cluster/sshd_up.sh; bash tests/cluster/remote_up.sh')


@pytest.fixture(scope='module')
def remote_env() -> Iterator[Dict[str, str]]:
    """Settings of the test sshd and of the test user's remote Pythons; Xenon started.

    Per module: at its end the connections close and a default xenon-grpc server started
    here stops, so that the xenon_backend tests start theirs with their own certificates.
    """
    files = [os.path.join(STATE, 'sshd.env'), os.path.join(STATE, 'remote.env')]
    missing = [f for f in files if not os.path.isfile(f)]
    require('the remote test set-up', not missing, REMOTE_HOW)
    env: Dict[str, str] = {}
    for path in files:
        env.update(read_env_file(path))
    from xenon_backend.server import port_open
    reachable = port_open(int(env['CLUSTER_TEST_SSH_PORT']), env['CLUSTER_TEST_SSH_HOST'],
                          timeout=2)
    require('the test sshd', reachable, 'bash tests/cluster/sshd_up.sh')
    from xenon_helpers import xenon_missing
    problem = xenon_missing()
    require('xenon-grpc', not problem, f'bash scripts/setup_xenon.sh ({problem})')
    import xenon_backend
    from xenon_backend import server as xenon_server
    running = getattr(xenon_server, '_default', None)
    started_here = running is None or running.channel is None
    xenon_backend.init()
    # a workdir of this module's own inside the test user's: what its jobs leave goes
    # with it, and concurrent test runs never touch each other's files
    workdirs = []
    for prefix in ('CLUSTER_TEST_', 'CLUSTER_TEST_SGE_'):
        if f'{prefix}SSH_USER' in env and f'{prefix}REMOTE_WORKDIR' in env:
            workdirs.append(_module_workdir(env, prefix))
    env['url'] = _url(env, 'CLUSTER_TEST_')
    yield env
    from cluster.run import remote
    remote.close_all()
    if started_here:
        xenon_backend.shutdown()
    for workdir in workdirs:
        shutil.rmtree(workdir, ignore_errors=True)  # root may remove the test users' files


def _module_workdir(env: Dict[str, str], prefix: str) -> Path:
    """A fresh directory inside the workdir of the user ``env[prefix + 'SSH_USER']``,
    which becomes that user's workdir in ``env``."""
    user = pwd.getpwnam(env[f'{prefix}SSH_USER'])
    workdir = Path(env[f'{prefix}REMOTE_WORKDIR']) / f'module-{uuid.uuid4().hex[:10]}'
    workdir.mkdir(mode=0o700)
    os.chown(workdir, user.pw_uid, user.pw_gid)
    env[f'{prefix}REMOTE_WORKDIR'] = str(workdir)
    return workdir


def _url(env: Dict[str, str], prefix: str) -> str:
    return (f'ssh://{env[prefix + "SSH_USER"]}@{env["CLUSTER_TEST_SSH_HOST"]}:'
            f'{env["CLUSTER_TEST_SSH_PORT"]}{env[prefix + "REMOTE_WORKDIR"]}')


SGE_LOGIN_HOW = ('bash tests/cluster/sge_up.sh; bash tests/cluster/sshd_up.sh; '
                 'bash tests/cluster/remote_up.sh')


def sge_login(env: Dict[str, str]) -> Dict[str, str]:
    """``env`` as the test endpoint's Grid Engine user (clustersge, whose SSH commands see
    the test Grid Engine and no Slurm): its user, key, Python, workdir and url."""
    keys = ('SSH_USER', 'SSH_KEY', 'REMOTE_PYTHON', 'REMOTE_WORKDIR')
    missing = [f'CLUSTER_TEST_SGE_{k}' for k in keys if f'CLUSTER_TEST_SGE_{k}' not in env]
    require('the Grid Engine user of the test sshd', not missing,
            f'{SGE_LOGIN_HOW} (no {", ".join(missing)})')
    view = dict(env, **{f'CLUSTER_TEST_{k}': env[f'CLUSTER_TEST_SGE_{k}'] for k in keys})
    view['url'] = _url(env, 'CLUSTER_TEST_SGE_')
    return view


def remote_profile(env: Dict[str, str], qtype: str, **changes) -> Dict[str, object]:
    """The profile keys of the test endpoint (strict host key checking off: a test host)."""
    profile = {'remote': env['url'], 'qtype': qtype, 'key': env['CLUSTER_TEST_SSH_KEY'],
               'python': env['CLUSTER_TEST_REMOTE_PYTHON'], 'strict_host_key': False}
    profile.update(changes)
    return profile


@pytest.fixture(scope='module')
def remote_profiles(remote_env, private_config) -> Dict[str, str]:
    """Profiles remote-slurm and remote-torque for the test endpoint, and remote-sge for its
    Grid Engine user (without qtype: detection over SSH picks sge) when it is set up."""
    from cluster import config_file
    for qtype in ('slurm', 'torque'):
        config_file.set_profile(f'remote-{qtype}', remote_profile(remote_env, qtype),
                                update=False)
    if 'CLUSTER_TEST_SGE_REMOTE_WORKDIR' in remote_env:
        profile = remote_profile(sge_login(remote_env), 'sge')
        del profile['qtype']
        config_file.set_profile('remote-sge', profile, update=False)
    return remote_env


def remote_target(env: Dict[str, str], profile: str) -> Dict[str, str]:
    """Submit keywords of the remote ``profile`` (remote-slurm, remote-torque, remote-sge):
    the profile and a fresh run directory of its user."""
    if profile == 'remote-sge':
        from support import sge_env
        sge_env()                        # fails when strict unless qmaster answers
        env = sge_login(env)
    return {'profile': profile, 'dir': str(remote_rundir(env))}


def remote_rundir(env: Dict[str, str]) -> Path:
    """A fresh directory of the test user inside its workdir (readable here: we are root);
    of the Grid Engine user for ``sge_login(env)``."""
    user = pwd.getpwnam(env['CLUSTER_TEST_SSH_USER'])
    path = Path(env['CLUSTER_TEST_REMOTE_WORKDIR']) / f'run-{uuid.uuid4().hex[:10]}'
    path.mkdir(mode=0o700)
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


REMOTE_MARKS = [pytest.mark.remote, pytest.mark.sshd, pytest.mark.xenon]


@pytest.fixture(params=['local',
                        pytest.param('slurm', marks=pytest.mark.slurm),
                        pytest.param('torque', marks=pytest.mark.torque),
                        pytest.param('sge', marks=pytest.mark.sge),
                        pytest.param('remote-slurm', marks=[pytest.mark.slurm, *REMOTE_MARKS]),
                        pytest.param('remote-torque',
                                     marks=[pytest.mark.torque, *REMOTE_MARKS]),
                        pytest.param('remote-sge', marks=[pytest.mark.sge, *REMOTE_MARKS])])
def target(request, tmp_path):
    """The submit keywords of each place the Job API runs: ``{'qtype': ...}`` here, or
    ``{'profile': 'remote-...', 'dir': <a run directory of the remote user>}`` over SSH."""
    name = request.param
    if name == 'local':
        return {'qtype': 'local'}
    if name == 'sge':
        use_sge(request.getfixturevalue('monkeypatch'))
        return {'qtype': 'sge'}
    if name == 'remote-sge':
        return remote_target(request.getfixturevalue('remote_profiles'), name)
    _require_slurm(name.split('-')[-1])
    if not name.startswith('remote-'):
        return {'qtype': name}
    return remote_target(request.getfixturevalue('remote_profiles'), name)


@pytest.fixture
def rundir(target, in_tmp) -> Path:
    """Where the test's jobs run: the test's own directory, or the remote run directory."""
    return Path(target['dir']) if 'dir' in target else in_tmp


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test inside its own temporary directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path

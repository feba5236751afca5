"""The package as users get it: a wheel built from the source, installed into a fresh
virtualenv outside the checkout, running local, Slurm and remote jobs from elsewhere.

The wheel is built once per session from a copy of the source without the jar, the proto
or the stubs (so the build really makes them), with pip's ordinary isolated build.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import REMOTE_MARKS, remote_profile, remote_rundir, slurm_ready
from support import require
from xenon_backend import build

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ('.venv', '.git', 'build', 'dist', '*.egg-info', '__pycache__', '.pytest_cache',
             '*.jar', 'xenon.proto', 'xenon_pb2*', '_build')

pytestmark = [pytest.mark.slurm, *REMOTE_MARKS]


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, **kwargs)
    assert done.returncode == 0, f'{argv}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}'
    return done


@pytest.fixture(scope='session')
def wheel(tmp_path_factory) -> Path:
    """``pip wheel --no-deps`` of a clean copy of the source tree (built once)."""
    base = tmp_path_factory.mktemp('wheel')
    source = base / 'src'
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*GENERATED))
    assert not list((source / 'xenon_backend' / 'proto').glob('xenon_pb2*'))
    started = time.monotonic()
    _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(base / 'dist'),
          str(source)], cwd=base)
    print(f'wheel built in {time.monotonic() - started:.1f} s')
    wheels = list((base / 'dist').glob('cluster-*.whl'))
    assert len(wheels) == 1
    return wheels[0]


@pytest.fixture(scope='session')
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv (not inside the checkout) with the wheel installed by its own pip."""
    path = tmp_path_factory.mktemp('venv') / 'venv'
    assert ROOT not in path.parents
    _run([sys.executable, '-m', 'venv', str(path)])
    started = time.monotonic()
    _run([str(path / 'bin' / 'python'), '-m', 'pip', 'install', '-q', str(wheel)])
    print(f'wheel installed in {time.monotonic() - started:.1f} s')
    return path


def test_the_wheel_holds_every_package(wheel):
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    packages = {os.path.dirname(name) for name in names if name.endswith('/__init__.py')}
    source = {str(p.parent.relative_to(ROOT)) for p in ROOT.glob('*/**/__init__.py')
              if p.parts[len(ROOT.parts)] in ('cluster', 'xenon_backend')}
    assert source <= packages and 'cluster/run/remote' in packages
    assert 'xenon_backend/proto/xenon_pb2.py' in names           # made at build time
    assert 'xenon_backend/proto/xenon_pb2_grpc.py' in names


JOBS = textwrap.dedent('''
    import json, os, sys, sysconfig
    import cluster
    from cluster import config_file

    here = os.path.realpath(cluster.__file__)
    site = os.path.realpath(sysconfig.get_paths()['purelib'])
    assert here.startswith(site + os.sep), (here, site)
    assert not any(os.path.isdir(os.path.join(p or '.', 'cluster', 'batch'))
                   and not os.path.realpath(p or '.').startswith(site) for p in sys.path), sys.path

    def add(a, b):
        return a + b

    profile, rundir = json.loads(sys.argv[1]), sys.argv[2]
    config_file.set_profile('wheel-remote', profile, update=False)
    values = [cluster.submit(add, (1, 2), qtype='local').get(),
              cluster.submit(add, (2, 3), qtype='slurm').get(),
              cluster.submit(add, (3, 4), profile='wheel-remote', dir=rundir).get()]
    print(json.dumps({'file': here, 'values': values}))
''')


def test_an_installed_wheel_runs_local_slurm_and_remote_jobs(venv, remote_env, tmp_path):
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    (elsewhere / 'jobs.py').write_text(JOBS)
    env = {name: value for name, value in os.environ.items()
           if name not in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTEST_CURRENT_TEST')}
    env['CLUSTER_CONFIG'] = str(tmp_path / 'config' / 'cluster.ini')
    profile = remote_profile(remote_env, 'slurm')
    done = _run([str(venv / 'bin' / 'python'), 'jobs.py', json.dumps(profile),
                 str(remote_rundir(remote_env))], cwd=elsewhere, env=env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result['values'] == [3, 5, 7]
    assert result['file'].startswith(str(venv.resolve()))


FIRST_USE = textwrap.dedent('''
    from xenon_backend import _stubs
    from xenon_backend.server import Server
    with Server() as server:
        names = server.scheduler_stub.getAdaptorNames(_stubs.pb2().Empty()).name
    print('adaptors', ' '.join(sorted(names)))
''')


def test_first_use_fetches_the_jar_into_a_fresh_data_dir(venv, tmp_path):
    """The installed package with no jar anywhere: starting the server fetches it from PyPI
    into the user data directory, says so on stderr, checks it, and runs it."""
    data = tmp_path / 'data'
    env = {name: value for name, value in os.environ.items()
           if name not in ('PYTHONPATH', build.JAR_ENV)}
    env['XDG_DATA_HOME'] = str(data)
    started = time.monotonic()
    done = _run([str(venv / 'bin' / 'python'), '-c', FIRST_USE], cwd=tmp_path, env=env)
    print(f'first use (fetch, certificates, server start) took {time.monotonic() - started:.1f} s')
    jar = data / 'cluster' / 'jar' / build.JAR_NAME
    assert f'downloading {build.SDIST_REQUIREMENT} from PyPI' in done.stderr
    assert f'into {jar}' in done.stderr
    assert build.sha256(jar) == build.JAR_SHA256
    assert 'ssh' in done.stdout.split() and 'slurm' in done.stdout.split()
    assert sorted(p.name for p in jar.parent.iterdir()) == [build.JAR_NAME]

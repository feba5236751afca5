"""Importing the packages does no work: no file written, no process started, no detection."""
import os
import subprocess
import sys
import textwrap

CHECK = textwrap.dedent('''
    import os, subprocess, sys, threading
    def refuse(*args, **kwargs):
        raise AssertionError('a process was started at import time')
    subprocess.Popen.__init__ = refuse
    os.fork = refuse
    os.posix_spawn = refuse
    import cluster, cluster.cli, cluster.jobqueue, cluster.queue, cluster.config_file
    import cluster.batch.local, cluster.demo, cluster.logme, xenon_backend
    assert cluster.queue.MODE is None, 'queue detected at import'
    assert cluster.jobqueue.JQUEUE is None, 'job queue created at import'
    assert threading.active_count() == 1, threading.enumerate()
    print('clean')
''')


def test_import_writes_nothing_and_starts_nothing(tmp_path):
    home = tmp_path / 'home'
    home.mkdir()
    env = dict(os.environ, HOME=str(home), CLUSTER_CONFIG=str(tmp_path / 'cfg' / 'cluster.ini'))
    result = subprocess.run([sys.executable, '-c', CHECK], env=env, capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'clean'
    assert list(home.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ['home']


BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'benchmarks')


def test_every_benchmark_answers_help():
    """The one-command benchmarks import from the checkout (a missing helper fails here)."""
    scripts = sorted(name for name in os.listdir(BENCHMARKS)
                     if name.endswith('.py') and not name.startswith('_'))
    assert {'local.py', 'slurm.py', 'remote.py', 'xenon.py'} <= set(scripts)
    for name in scripts:
        result = subprocess.run([sys.executable, os.path.join(BENCHMARKS, name), '--help'],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f'{name}: {result.stderr}'
        assert 'usage:' in result.stdout, name

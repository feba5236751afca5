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

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
    import cluster, cluster.job.cli, cluster.jobqueue, cluster.queue, cluster.config_file
    import cluster.batch.local, cluster.job.demo, cluster.logme, xenon_backend
    assert cluster.queue.MODE is None, 'queue detected at import'
    assert cluster.jobqueue.JQUEUE is None, 'job queue created at import'
    assert threading.active_count() == 1, threading.enumerate()
    print('clean')
''')


def _run_in_a_fresh_home(tmp_path, script: str) -> str:
    """Run ``script`` with an empty HOME and an unwritten config; assert it exits 0 and
    writes nothing (HOME stays empty, nothing appears beside it); return its stdout."""
    home = tmp_path / 'home'
    home.mkdir()
    env = dict(os.environ, HOME=str(home), CLUSTER_CONFIG=str(tmp_path / 'cfg' / 'cluster.ini'))
    result = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(home.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ['home']
    return result.stdout.strip()


def test_import_writes_nothing_and_starts_nothing(tmp_path):
    assert _run_in_a_fresh_home(tmp_path, CHECK) == 'clean'


SEED_API = textwrap.dedent('''
    import os, subprocess, sys, threading
    def refuse(*args, **kwargs):
        raise AssertionError('a process was started at import time')
    subprocess.Popen.__init__ = refuse
    os.fork = refuse
    import cluster
    for name in ('config_file', 'jobqueue', 'logme', 'options', 'run', 'queue', 'job'):
        assert getattr(cluster, name).__name__ == 'cluster.' + name, name
    cluster.jobqueue.THREADS = 5
    assert cluster.queue.MODE is None and cluster.jobqueue.JQUEUE is None
    assert threading.active_count() == 1, threading.enumerate()
    print('seed api')
''')


def test_the_seeds_module_attributes_exist_after_import_cluster_and_do_no_work(tmp_path):
    """Issue 9 item 9: ``import cluster`` then ``cluster.config_file...`` as the seed wrote."""
    assert _run_in_a_fresh_home(tmp_path, SEED_API) == 'seed api'


THREADS = textwrap.dedent('''
    import logging, sys
    import cluster
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format='%(message)s')
    job = cluster.submit('echo hi', qtype='local', cores=2, time='00:02:00', mem='2000',
                         threads=3)
    print(job.get(), cluster.jobqueue.JQUEUE.cores)
    print(cluster.submit('echo again', qtype='local', threads=1).get())
''')


def test_threads_sizes_the_local_queue_that_its_job_starts(tmp_path):
    """``threads`` is the seed's local-mode option: the local queue's cores, when it starts."""
    env = dict(os.environ, CLUSTER_CONFIG=str(tmp_path / 'cluster.ini'))
    result = subprocess.run([sys.executable, '-c', THREADS], env=env, capture_output=True,
                            text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "(0, 'hi\\n', '') 3"
    assert lines[1] == 'threads=1 not applied: the local job queue is running already, with 3 cores'
    assert lines[2] == "(0, 'again\\n', '')"


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

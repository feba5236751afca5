"""The examples of docs/xenon run, and the adaptors chapter matches the live server."""
from __future__ import annotations

import codecs
import os
import subprocess
import sys
from pathlib import Path
from queue import Queue

import pytest

pytest_plugins = ['xenon_fixtures']
pytestmark = pytest.mark.xenon

DOCS = Path(__file__).resolve().parent.parent / 'docs' / 'xenon'
EXAMPLES = DOCS / 'examples'


def example_env(tmp_path, xenon_tls_dir):
    """PATH with a ``python`` that is this interpreter; the test run's TLS directory."""
    shim = tmp_path / 'bin'
    shim.mkdir(exist_ok=True)
    if not (shim / 'python').exists():
        os.symlink(sys.executable, shim / 'python')
    root = str(DOCS.parent.parent)
    return dict(os.environ, PATH=f'{shim}{os.pathsep}{os.environ.get("PATH", "")}',
                PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')])),
                CLUSTER_XENON_TLS_DIR=str(xenon_tls_dir))


def test_the_streaming_example_runs(xenon_session, tmp_path, xenon_tls_dir):
    done = subprocess.run([sys.executable, 'streaming.py'], cwd=EXAMPLES, capture_output=True,
                          text=True, timeout=120, env=example_env(tmp_path, xenon_tls_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        'sent:     Gur dhvpx oebja sbk', 'received: The quick brown fox',
        'sent:     whzcf bire', 'received: jumps over',
        'sent:     gur ynml qbt.', 'received: the lazy dog.',
        'job local-0 ended with exit code 0']


def test_the_rot13_protocol_of_the_seeds(xb, tmp_path):
    """The seeds' streaming example: a queue-fed generator, ``stream.next()``, a final wait."""
    def make_input_stream():
        input_queue = Queue()

        def input_stream():
            while True:
                cmd, value = input_queue.get()
                if cmd == 'end':
                    input_queue.task_done()
                    return
                yield value.encode()
                input_queue.task_done()
        return input_queue, input_stream

    def get_stdout(stream):
        return stream.next().stdout.decode()

    lines = ['Zlfgvp aboyr tnf,', 'Urnil lrg syrrgvat sebz tenfc,', 'Oyhr yvxr oheavat vpr.']
    description = xb.JobDescription(executable=sys.executable,
                                    arguments=[str(EXAMPLES / 'rot13.py')], queue_name='multi')
    received = []
    with xb.Scheduler.create(adaptor='local') as scheduler:
        input_queue, input_stream = make_input_stream()
        job, output_stream = scheduler.submit_interactive_job(
            description=description, stdin_stream=input_stream())
        try:
            for line in lines:
                input_queue.put(('msg', line + '\n'))
                received.append(get_stdout(output_stream))
        finally:
            input_queue.put(('end', None))
            input_queue.join()
        status = scheduler.wait_until_done(job)
    assert received == [codecs.encode(line, 'rot_13') + '\n' for line in lines]
    assert status.done and status.exit_code == 0


@pytest.mark.sshd
def test_the_quickstart_example_runs(sshd, tmp_path, xenon_tls_dir):
    done = subprocess.run(
        [sys.executable, 'quickstart.py', f'{sshd["user"]}@{sshd["location"]}', sshd['key']],
        cwd=EXAMPLES, capture_output=True, text=True, timeout=120,
        env=example_env(tmp_path, xenon_tls_dir))
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith('job ssh-') and first.endswith('DONE, exit code 0')
    assert second.startswith('Hello from ')


def test_the_adaptors_chapter_is_current(xenon_session, tmp_path, xenon_tls_dir):
    done = subprocess.run([sys.executable, str(DOCS / 'gen_adaptors.py'), '--check'],
                          capture_output=True, text=True, timeout=120,
                          env=example_env(tmp_path, xenon_tls_dir))
    assert done.returncode == 0, done.stderr
    chapter = (DOCS / 'adaptors.rst').read_text()
    for name in ('local', 'ssh', 'at', 'slurm', 'gridengine', 'torque',
                 'file', 'sftp', 'ftp', 'webdav', 's3'):
        assert f'\n{name}\n' in chapter
    assert 'xenon.adaptors.schedulers.ssh.strictHostKeyChecking' in chapter

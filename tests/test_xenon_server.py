"""The xenon-grpc server: TLS, reuse, shutdown of the process group, faults, logs."""
from __future__ import annotations

import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap

import grpc
import psutil
import pytest

from xenon_backend import exceptions as xe
from xenon_backend.server import Server, find_java
from xenon_backend.tls import ensure_certificates
from support import until
from xenon_helpers import require, xenon_missing

pytest_plugins = ['xenon_fixtures']
pytestmark = pytest.mark.xenon


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def start_sleeper(server, tmp_path):
    """A local job in the server's process group that records its pid."""
    import xenon_backend as xb
    pid_file = tmp_path / f'sleeper-{server.port}.pid'
    scheduler = xb.Scheduler.create('local', server=server)
    scheduler.submit_batch_job(xb.JobDescription(
        executable='/bin/sh', arguments=['-c', f'echo $$ > {pid_file}; exec sleep 300'],
        queue_name='multi'))
    until(lambda: pid_file.exists() and pid_file.read_text().strip(), what='the job to start')
    return int(pid_file.read_text())


def test_init_returns_the_running_default_server(xb, xenon_session):
    assert xb.init() is xenon_session
    assert xb.init(port=xenon_session.port) is xenon_session
    assert xenon_session.owned and xenon_session.alive()
    assert 'own' in repr(xenon_session)


def test_tls_files_are_private_and_the_server_key_is_pkcs8(xenon_session, xenon_tls_dir):
    assert stat.S_IMODE(os.stat(xenon_tls_dir).st_mode) == 0o700
    names = sorted(os.listdir(xenon_tls_dir))
    assert names == ['.made-by-cluster', 'ca.crt', 'client.crt', 'client.key', 'server.crt',
                     'server.key']
    for name in names:
        assert stat.S_IMODE(os.stat(xenon_tls_dir / name).st_mode) == 0o600
    assert (xenon_tls_dir / 'server.key').read_text().startswith('-----BEGIN PRIVATE KEY-----')
    assert ensure_certificates(xenon_tls_dir).directory == xenon_tls_dir  # made once, kept
    os.chmod(xenon_tls_dir, 0o755)
    try:
        with pytest.raises(xe.XenonServerError, match='0700'):
            ensure_certificates(xenon_tls_dir)
    finally:
        os.chmod(xenon_tls_dir, 0o700)


def test_a_users_directory_without_certificates_is_refused_and_kept(tmp_path, monkeypatch):
    """CLUSTER_XENON_TLS_DIR naming a directory of the user's: never deleted (issue 9 item 6)."""
    from xenon_backend import tls
    mine = tmp_path / 'mine'
    mine.mkdir(mode=0o700)
    (mine / 'notes.txt').write_text('my own file')
    monkeypatch.setenv(tls.TLS_DIR_ENV, str(mine))
    with pytest.raises(xe.XenonServerError, match=f"{mine} holds files \\(notes.txt\\).*refusing"):
        ensure_certificates()
    assert sorted(os.listdir(mine)) == ['notes.txt']
    assert (mine / 'notes.txt').read_text() == 'my own file'
    assert sorted(os.listdir(tmp_path)) == ['mine']            # no temporary directory left


def test_an_incomplete_set_of_our_own_is_made_again_and_an_empty_dir_filled(tmp_path):
    ours = ensure_certificates(tmp_path / 'ours').directory
    (ours / 'client.key').unlink()
    assert ensure_certificates(ours).complete()
    empty = tmp_path / 'empty'
    empty.mkdir(mode=0o700)
    assert ensure_certificates(empty).complete()
    assert (empty / tls_marker()).is_file()
    assert sorted(os.listdir(tmp_path)) == ['empty', 'ours']


def tls_marker() -> str:
    from xenon_backend import tls
    return tls.MARKER


def test_a_client_without_the_client_certificate_is_refused(xenon_session, xenon_tls_dir):
    from xenon_backend import _stubs
    pb2, pb2_grpc = _stubs.modules()
    target = f'localhost:{xenon_session.port}'
    server_only = grpc.ssl_channel_credentials(
        root_certificates=(xenon_tls_dir / 'ca.crt').read_bytes())
    for channel in (grpc.secure_channel(target, server_only), grpc.insecure_channel(target)):
        with channel:
            with pytest.raises(grpc.RpcError) as refused:
                pb2_grpc.SchedulerServiceStub(channel).getAdaptorNames(pb2.Empty(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert xenon_session.alive()  # the server itself is fine, and we get in


def test_a_server_on_the_port_is_reused_and_left_running(xenon_session, xenon_tls_dir):
    reused = Server(port=xenon_session.port, tls_dir=xenon_tls_dir).start()
    assert not reused.owned and 'reused' in repr(reused)
    assert reused.alive()
    reused.stop()
    assert xenon_session.alive()


def test_a_port_taken_by_something_else_is_a_clear_error(xenon_tls_dir):
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(xe.XenonServerError, match=f'port {port} is taken'):
            Server(port=port, tls_dir=xenon_tls_dir).start()


def test_plaintext_only_when_asked_and_stop_kills_the_jobs(xenon_session, tmp_path):
    from xenon_backend import _stubs
    pb2, pb2_grpc = _stubs.modules()
    server = Server(disable_tls=True).start()
    try:
        with grpc.insecure_channel(f'localhost:{server.port}') as channel:
            names = pb2_grpc.FileSystemServiceStub(channel).getAdaptorNames(pb2.Empty(), timeout=10)
        assert 'file' in names.name
        pid = start_sleeper(server, tmp_path)
        jvm = server.process.pid
        assert os.getpgid(pid) == os.getpgid(jvm) == jvm  # own process group, jobs inside
    finally:
        server.stop()
    assert gone(jvm)
    until(lambda: gone(pid), timeout=10, what=f'the job {pid} to go with the group')
    assert server.process is None and not server.alive()
    with pytest.raises(xe.XenonServerError, match='not started or has been stopped'):
        server.ping()


@pytest.mark.parametrize('keep', [False, True], ids=['stopped', 'do_not_exit'])
def test_a_killed_python_takes_its_server_along(xenon_tls_dir, keep):
    """SIGKILL runs no atexit handler: the watchdog ends the JVM and its jobs all the same,
    unless do_not_exit asked to keep it."""
    script = textwrap.dedent(f'''
        import time
        import xenon_backend as xb
        server = xb.init(do_not_exit={keep})
        scheduler = xb.Scheduler.create('local', server=server)
        scheduler.submit_batch_job(xb.JobDescription(
            executable='/bin/sh', arguments=['-c', 'exec sleep 300'], queue_name='multi'))
        print(server.process.pid, flush=True)
        time.sleep(300)
    ''')
    env = dict(os.environ, CLUSTER_XENON_TLS_DIR=str(xenon_tls_dir))
    child = subprocess.Popen([sys.executable, '-c', script], env=env, stdout=subprocess.PIPE,
                             text=True)
    try:
        jvm = int(child.stdout.readline())
        until(lambda: [p for p in psutil.Process(jvm).children() if p.name() == 'sleep'],
              timeout=30, what='the local job to start')
        group = [jvm] + [p.pid for p in psutil.Process(jvm).children(recursive=True)]
        watchdogs = [p for p in psutil.Process(child.pid).children()
                     if f'kill -KILL -{jvm}' in ' '.join(p.cmdline())]
        assert len(watchdogs) == (0 if keep else 1)
    finally:
        child.kill()
        child.wait()
    try:
        if keep:
            assert not gone(jvm)
            os.killpg(jvm, signal.SIGKILL)
        for pid in group:
            until(lambda pid=pid: gone(pid), timeout=30, what=f'{pid} of the JVM group to end')
    finally:  # a failed watchdog must not leave the JVM behind
        try:
            os.killpg(jvm, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_killed_server_is_detected(xenon_tls_dir, tmp_path):
    import xenon_backend as xb
    server = Server(tls_dir=xenon_tls_dir).start()
    try:
        scheduler = xb.Scheduler.create('local', server=server)
        pid = start_sleeper(server, tmp_path)
        jvm = server.process.pid
        os.kill(jvm, signal.SIGKILL)
        server.process.wait(30)
        with pytest.raises(xe.XenonServerError, match=r'has exited with code -9.*init\(\)'):
            scheduler.get_queue_names()
        assert not server.process_alive()
    finally:
        server.stop()
    until(lambda: gone(pid), timeout=10, what=f'the orphaned job {pid} to go with the group')


def test_init_restarts_a_dead_default_server(xenon_tls_dir):
    script = textwrap.dedent('''
        import os, signal
        import xenon_backend as xb
        from xenon_backend.exceptions import XenonServerError
        first = xb.init()
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(30)
        try:
            xb.FileSystem.get_adaptor_names()
        except XenonServerError as exc:
            print('detected:', 'has exited' in str(exc))
        second = xb.init()
        print('restarted:', second is not first and 'file' in xb.FileSystem.get_adaptor_names())
    ''')
    env = dict(os.environ, CLUSTER_XENON_TLS_DIR=str(xenon_tls_dir))
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split('\n')[:2] == ['detected: True', 'restarted: True'], done.stderr


def test_missing_java_jar_or_stubs_say_what_to_do(monkeypatch, tmp_path):
    require('xenon-grpc', xenon_missing(), 'run bash scripts/setup_xenon.sh')
    monkeypatch.setenv('XENON_GRPC_JAR', str(tmp_path / 'missing.jar'))
    with pytest.raises(xe.XenonServerError, match='XENON_GRPC_JAR=.*missing.jar'):
        Server(disable_tls=True).start()
    monkeypatch.delenv('XENON_GRPC_JAR')
    monkeypatch.setenv('PATH', str(tmp_path))
    monkeypatch.delenv('JAVA_HOME', raising=False)
    with pytest.raises(xe.XenonServerError, match='apt-get install default-jre-headless'):
        find_java()
    with pytest.raises(xe.XenonServerError, match='apt-get install default-jre-headless'):
        Server(disable_tls=True).start()
    script = ("import sys; sys.modules['xenon_backend.proto.xenon_pb2'] = None\n"
              "import xenon_backend as xb\n"
              "try:\n    xb.init()\nexcept xb.exceptions.XenonServerError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=60)
    assert 'run `python -m xenon_backend.build`' in done.stdout, done.stderr


def test_no_credential_in_logs(caplog, xenon_tls_dir):
    import xenon_backend as xb
    secret = 'pw-Very-Secret-4711'
    caplog.set_level(logging.DEBUG)
    with socket.socket() as closed:
        closed.bind(('127.0.0.1', 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        with Server(tls_dir=xenon_tls_dir, log_level='DEBUG') as server:
            with pytest.raises(xe.XenonException) as failed:
                xb.Scheduler.create('ssh', f'127.0.0.1:{port}',
                                    {'xenon.adaptors.schedulers.ssh.strictHostKeyChecking': False},
                                    xb.PasswordCredential('someone', secret), server=server,
                                    timeout=30)
            with pytest.raises(xe.XenonException):
                xb.FileSystem.create('sftp', f'127.0.0.1:{port}',
                                     credential=xb.CertificateCredential('/no/key', secret, 'u'),
                                     server=server, timeout=30)
    assert f'127.0.0.1:{port}' in str(failed.value)
    jvm_lines = [r for r in caplog.records if r.name == 'xenon_backend.server.jvm']
    assert jvm_lines, 'the JVM output at DEBUG should have been logged'
    assert secret not in caplog.text and secret not in str(failed.value)

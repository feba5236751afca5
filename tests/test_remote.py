"""Remote clusters through Xenon: endpoints, the remote runner and store, bad input and faults.

The Job API itself runs over the remote endpoint in test_job.py (targets remote-slurm,
remote-torque and remote-sge). Here: what is special to the remote path, against the real
test sshd on 127.0.0.1 (user clustertest), the real Slurm behind it and the real xenon-grpc
jar; and a login node that runs Grid Engine (user clustersge, the real Grid Engine).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import cluster
from cluster import config_file
from cluster.run import remote
from cluster.script import function
from cluster.batch import State
from cluster.run.remote import (AuthenticationError, HostKeyError, HostUnreachableError,
                            RemotePathError, RemotePythonError)
from cluster.run.remote.store import local_dir_tag
from conftest import REMOTE_MARKS, remote_profile, sge_login

LIVE = [*REMOTE_MARKS, pytest.mark.slurm]


def add(a, b=0):
    return a + b


# -- without any server ---------------------------------------------------------------------
def test_endpoint_from_profile(private_config):
    config_file.set_profile('hpc-unit', {'remote': 'ssh://ann@hpc.example.org:2222/scratch/ann',
                                         'qtype': 'torque', 'key': '~/.ssh/id_ed25519',
                                         'python': '/usr/bin/python3'}, update=False)
    endpoint = remote.from_profile('hpc-unit')
    assert (endpoint.user, endpoint.host, endpoint.port) == ('ann', 'hpc.example.org', 2222)
    assert endpoint.workdir == '/scratch/ann' and endpoint.qtype == 'torque'
    assert endpoint.key == os.path.expanduser('~/.ssh/id_ed25519')
    assert endpoint.strict_host_key is True          # the default
    assert remote.from_profile('default') is None     # not remote
    assert remote.from_url('ssh://h').port == 22


def test_password_comes_from_the_environment_and_is_never_shown(monkeypatch):
    endpoint = remote.from_url('ssh://ann@hpc.example.org', profile='my-hpc')
    monkeypatch.setenv('CLUSTER_PASSWORD_MY_HPC', 's3cret')
    credential = endpoint.credential()
    assert credential.password == 's3cret'
    assert 's3cret' not in repr(credential) and 's3cret' not in repr(endpoint)


def test_bad_remote_address_is_named():
    with pytest.raises(cluster.ConfigError, match='ftp://x'):
        remote.from_url('ftp://x')


def test_target_paths_live_in_a_job_directory_of_their_own(tmp_path):
    endpoint = remote.from_url('ssh://ann@hpc.example.org/scratch/ann')
    store = remote.RemoteStore(remote.Connection(endpoint))   # absolute workdir: no connection
    files = cluster.script.JobFiles(str(tmp_path), 'job', 'cluster', 'slurm')
    target = store.target(files)
    assert target.directory == f'/scratch/ann/cluster-jobs/{local_dir_tag(str(tmp_path))}/job.cluster'
    assert target.submission == target.directory + '/job.cluster.sbatch'
    assert store.local(files, target.outfile) == files.outfile


def test_installed_modules_go_by_reference_own_modules_by_value(tmp_path, monkeypatch):
    (tmp_path / 'submit_side_only.py').write_text('def f():\n    return 1\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    import submit_side_only  # noqa: F401
    assert function.is_installed('json') and function.is_installed('dill')
    assert function.is_installed('sys')
    assert not function.is_installed('submit_side_only')
    assert not function.is_installed('__main__')


# -- live: the test sshd, Slurm, xenon-grpc --------------------------------------------------
@pytest.fixture(scope='module')
def env(remote_profiles):
    return remote_profiles


@pytest.fixture(scope='module')
def connection(env):
    return remote.connect(remote.from_profile('remote-slurm'))


def make_profile(env, name, qtype='slurm', **changes):
    config_file.set_profile(name, remote_profile(env, qtype, **changes), update=False)
    return name


@pytest.mark.usefixtures('env')
class TestRunner:
    pytestmark = LIVE

    def test_arguments_arrive_exactly(self, connection):
        code, out, err = connection.run(['printf', '[%s]', '', 'a b', "it's", '$HOME', 'x\ny',
                                         '`id`;|&'])
        assert (code, err) == (0, '')
        assert out == "[][a b][it's][$HOME][x\ny][`id`;|&]"

    def test_exit_code_stdin_and_stderr(self, connection):
        assert connection.run(['sh', '-c', 'cat; echo oops >&2; exit 3'], stdin='in\n') == \
            (3, 'in\n', 'oops\n')
        code, _, err = connection.run(['no-such-program-xyz'])
        assert code == 127 and 'not found' in err

    def test_quick_commands_never_lose_their_output(self, connection):
        # xenon-grpc 3.0.1 can drop the output of a command that ends before its stdin
        # is written to; the runner keeps the channel open until the end markers arrive
        results = [connection.run(['printf', 'x%s', str(i)]) for i in range(150)]
        assert results == [(0, f'x{i}', '') for i in range(150)]

    def test_a_command_past_its_timeout_is_cancelled(self, connection):
        started = time.monotonic()
        code, _, err = connection.run(['sleep', '30'], timeout=1)
        assert code == 124 and 'timed out' in err
        assert time.monotonic() - started < 10
        assert connection.run(['true']) [0] == 0   # the connection is still usable

    def test_a_torque_qsub_is_not_taken_for_grid_engine_remotely(self, connection):
        from cluster import batch
        # the test user's qsub is Slurm's Torque wrapper: qstat -help and $SGE_ROOT,
        # asked through the remote shell, say it is not Grid Engine's
        assert batch.found('torque', connection.run) and not batch.found('sge', connection.run)

    def test_qtype_is_detected_remotely(self, env, connection, in_tmp):
        assert connection.detect_qtype() == 'slurm'   # sbatch is on the test user's PATH
        name = make_profile(env, 'detect', qtype=None)
        job = cluster.Job('echo found', profile=name)
        assert job.qtype == 'slurm' and job.files.submission.endswith('.sbatch')
        assert job.submit().get() == (0, 'found\n', '')


def fails(x):
    raise ValueError(f'no good: {x}')


@pytest.mark.usefixtures('env')
class TestGridEngineLogin:
    """The test sshd's user clustersge: its SSH commands see the test Grid Engine, no Slurm."""
    pytestmark = [*REMOTE_MARKS, pytest.mark.sge]

    @pytest.fixture(autouse=True)
    def sge(self, env):
        """The environment that reaches the same Grid Engine here (to read its records);
        fails when strict unless qmaster answers and the Grid Engine user is set up."""
        from support import sge_env
        sge_login(env)
        return sge_env()

    def test_detection_picks_grid_engine_there_and_slurm_here(self, env, connection):
        from cluster import batch
        there = remote.connect(remote.from_profile('remote-sge'))
        assert there.endpoint.user == sge_login(env)['CLUSTER_TEST_SSH_USER'] != 'clustertest'
        assert there.endpoint.qtype is None                  # the profile leaves it out
        assert batch.detect_with(there.run, remote=True) == 'sge'
        assert not batch.found('torque', there.run)    # its qsub is Grid Engine's
        assert batch.detect_with(connection.run, remote=True) == 'slurm'

    def test_jobs_run_on_grid_engine_as_that_user(self, env, sge, in_tmp):
        user = sge_login(env)['CLUSTER_TEST_SSH_USER']
        command = cluster.Job('echo on ge; echo err >&2; exit 2', name='ge_cmd',
                              profile='remote-sge')
        assert command.qtype == 'sge' and command.files.submission.endswith('.sge')
        value = cluster.Job(add, (2, 3), name='ge_add', profile='remote-sge').submit()
        bad = cluster.Job(fails, (7,), name='ge_bad', profile='remote-sge').submit()
        assert command.submit().get() == (2, 'on ge\n', 'err\n')
        assert value.get() == 5
        with pytest.raises(ValueError, match='no good: 7') as raised:
            bad.get()
        assert 'in fails' in raised.value.remote_traceback
        for job, code in ((command, '2'), (value, '0'), (bad, '1')):
            # the id is Grid Engine's: its accounting has the job, run by that user
            record = subprocess.run(['qacct', '-j', job.id], env=sge, capture_output=True,
                                    text=True, timeout=60)
            assert record.returncode == 0, record.stderr
            fields = dict(line.split(None, 1) for line in record.stdout.splitlines()
                          if len(line.split(None, 1)) == 2)
            assert fields['owner'].strip() == user
            assert fields['jobname'].strip().startswith(job.name)
            assert fields['exit_status'].split()[0] == code

    def test_one_qstat_per_poll_for_all_jobs(self, in_tmp):
        there = remote.connect(remote.from_profile('remote-sge'))
        jobs = [cluster.submit('sleep 1', profile='remote-sge') for _ in range(4)]
        watcher = jobs[0]._watcher
        before_polls, before_qstat = watcher.polls, there.commands['qstat']
        cluster.Queue(profile='remote-sge').wait(jobs)
        polls = watcher.polls - before_polls
        assert polls >= 1 and there.commands['qstat'] - before_qstat == polls
        assert all(job.state == State.COMPLETED for job in jobs)


@pytest.mark.usefixtures('env')
class TestJobs:
    pytestmark = LIVE

    def test_files_are_private_on_the_remote_side(self, in_tmp):
        job = cluster.submit(add, (1, 2), profile='remote-slurm')
        assert job.get() == 3
        for path in (job.target.submission, job.target.pickle_in, job.target.function_py):
            info = os.stat(path)   # same machine: root can look
            assert stat.S_IMODE(info.st_mode) == 0o600, path
            assert info.st_uid != 0   # written by the remote user
        assert stat.S_IMODE(os.stat(job.target.directory).st_mode) == 0o700

    def test_function_from_a_module_that_exists_only_here(self, in_tmp, monkeypatch):
        (in_tmp / 'only_on_laptop.py').write_text(textwrap.dedent('''
            SCALE = 3

            class Box:
                def __init__(self, value):
                    self.value = value

            def helper(x):
                return x * SCALE

            def work(x):
                return Box(helper(x) + 1)
        '''))
        monkeypatch.syspath_prepend(str(in_tmp))
        import only_on_laptop
        result = cluster.submit(only_on_laptop.work, (4,), profile='remote-slurm').get()
        assert result.value == 13

    def test_one_status_command_per_poll_for_all_jobs(self, in_tmp, connection):
        jobs = [cluster.submit('sleep 1', profile='remote-slurm') for _ in range(6)]
        watcher = jobs[0]._watcher
        before_polls, before_squeue = watcher.polls, connection.commands['squeue']
        cluster.Queue(profile='remote-slurm').wait(jobs)
        polls = watcher.polls - before_polls
        assert polls >= 1
        assert connection.commands['squeue'] - before_squeue == polls
        assert all(job.state == State.COMPLETED for job in jobs)

    def test_clean_dir_removes_remote_files(self, in_tmp):
        job = cluster.submit('echo x', profile='remote-slurm', name='tidy')
        job.get()
        assert os.path.exists(job.target.submission)
        deleted = cluster.clean_dir(str(in_tmp), profile='remote-slurm')
        assert job.target.submission in deleted and job.files.submission in deleted
        assert not os.path.exists(job.target.directory)

    def test_cli_submit_queue_wait(self, in_tmp, private_config):
        env = dict(os.environ, CLUSTER_CONFIG=private_config)

        def cli(*args):
            return subprocess.run([sys.executable, '-m', 'cluster.job.cli', *args], env=env,
                                  cwd=str(in_tmp), capture_output=True, text=True, timeout=180)
        submitted = cli('submit', '--profile', 'remote-slurm', '--', 'echo', 'hi there')
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.strip().splitlines()[-1]
        assert job_id.isdigit()
        waited = cli('wait', '--profile', 'remote-slurm', '--timeout', '120', job_id)
        assert waited.returncode == 0, waited.stderr
        assert f'{job_id} completed' in waited.stdout
        listed = cli('queue', '--profile', 'remote-slurm')
        assert listed.returncode == 0 and 'state' in listed.stdout


    def test_cli_submit_says_where_the_output_is_there_and_here(self, env, in_tmp,
                                                               private_config):
        workdir = env['CLUSTER_TEST_REMOTE_WORKDIR']
        env = dict(os.environ, CLUSTER_CONFIG=private_config)
        submitted = subprocess.run(
            [sys.executable, '-m', 'cluster.job.cli', 'submit', '--profile', 'remote-slurm', '--',
             'echo', 'where'], env=env, cwd=str(in_tmp), capture_output=True, text=True,
            timeout=180)
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.split()[0]
        there = re.search(rf'job {job_id}: output (\S+), errors', submitted.stderr).group(1)
        here = re.search(r"get\(\) fetches it to (\S+)", submitted.stderr).group(1)
        assert there.startswith(workdir + '/cluster-jobs/') and there.endswith('.out')
        assert here == str(in_tmp / 'echo.cluster.out')
        job = cluster.Job('echo where', profile='remote-slurm', name='where').submit()
        assert job.get()[1] == 'where\n'     # what get() does: fetch the remote output here
        assert os.path.exists(job.store.local(job.files, job.outfile))


@contextlib.contextmanager
def _stalling_proxy(upstream_port):
    """A port in front of the test sshd that passes on its greeting and then holds back every
    later byte from it: an SSH server too slow to finish the handshake."""
    listener = socket.create_server(('127.0.0.1', 0))
    opened = []

    def pump(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)

    def serve():
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                server = socket.create_connection(('127.0.0.1', upstream_port))
                opened.extend((client, server))
                greeting = b''
                while not greeting.endswith(b'\n'):
                    greeting += server.recv(1)
                client.sendall(greeting)
                threading.Thread(target=pump, args=(client, server), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        for sock in [listener, *opened]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


# -- bad input and faults -------------------------------------------------------------------
@pytest.mark.usefixtures('env')
class TestBadInput:
    pytestmark = LIVE

    def test_refused_port_names_the_host(self, env, in_tmp):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]   # closed again when the block ends
        name = make_profile(env, 'refused', remote=f'ssh://clustertest@127.0.0.1:{port}/tmp')
        with pytest.raises(HostUnreachableError, match=f'127.0.0.1:{port}'):
            cluster.Job('true', profile=name).submit()   # a Job alone opens nothing

    def test_silent_host_fails_within_the_connect_timeout(self, env, in_tmp, monkeypatch):
        monkeypatch.setattr('cluster.run.remote.endpoint.CONNECT_TIMEOUT', 2.0)
        with socket.socket() as silent:
            silent.bind(('127.0.0.1', 0))
            silent.listen(4)                 # accepts, and never says a word
            port = silent.getsockname()[1]
            name = make_profile(env, 'silent', remote=f'ssh://clustertest@127.0.0.1:{port}/tmp')
            started = time.monotonic()
            with pytest.raises(HostUnreachableError, match=f'127.0.0.1:{port}.*2 s'):
                cluster.Job('true', profile=name).submit()   # a Job alone opens nothing
            assert time.monotonic() - started < 2.0 + 3.0

    def test_a_handshake_slower_than_the_connect_timeout_says_so(self, env, in_tmp,
                                                                 monkeypatch):
        monkeypatch.setattr('cluster.run.remote.endpoint.CONNECT_TIMEOUT', 2.0)
        with _stalling_proxy(int(env['CLUSTER_TEST_SSH_PORT'])) as port:
            name = make_profile(env, 'stalled', remote=f'ssh://clustertest@127.0.0.1:{port}/tmp')
            started = time.monotonic()
            with pytest.raises(HostUnreachableError,
                               match=f'127.0.0.1:{port} did not finish .* 2 s'):
                cluster.Job('true', profile=name).submit()   # a Job alone opens nothing
            assert time.monotonic() - started < 2.0 + 5.0

    def test_wrong_key_says_authentication_failed(self, env, in_tmp, tmp_path):
        key = tmp_path / 'not_authorized'
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(key)], check=True)
        name = make_profile(env, 'wrong-key', key=str(key))
        with pytest.raises(AuthenticationError,
                           match='authentication failed for clustertest@127.0.0.1'):
            cluster.Job('true', profile=name).submit()   # a Job alone opens nothing

    def test_remote_python_without_dill_is_named_at_submit(self, env, in_tmp):
        python = env['CLUSTER_TEST_REMOTE_PYTHON_NODILL']
        name = make_profile(env, 'no-dill', python=python)
        job = cluster.Job(add, (1,), profile=name)
        with pytest.raises(RemotePythonError, match=f"{python}.*dill"):
            job.submit()
        assert job.id is None
        assert cluster.Job('echo fine', profile=name).submit().get()[1] == 'fine\n'

    def test_unwritable_job_directory_names_the_file(self, in_tmp):
        job = cluster.Job('echo x', profile='remote-slurm')
        os.chmod(job.target.directory, 0o500)   # as root, on the same machine
        try:
            with pytest.raises(RemotePathError, match=re.escape(job.target.submission)):
                job.submit()
        finally:
            os.chmod(job.target.directory, 0o700)
        assert job.id is None
        assert job.submit().get() == (0, 'x\n', '')   # nothing lost: it goes once it can

    def test_permission_denied_names_the_remote_path(self, env, in_tmp):
        name = make_profile(env, 'no-write', remote=env['url'].rsplit(
            env['CLUSTER_TEST_REMOTE_WORKDIR'], 1)[0] + '/usr')
        with pytest.raises(RemotePathError, match='/usr/cluster-jobs'):
            cluster.Job('true', profile=name).submit()   # a Job alone opens nothing


def _private_server(home, tls_dir):
    """A xenon-grpc server of its own whose JVM sees ``home`` as its home directory."""
    import xenon_backend
    saved = {k: os.environ.get(k) for k in ('JAVA_TOOL_OPTIONS', 'CLUSTER_XENON_TLS_DIR')}
    os.environ['JAVA_TOOL_OPTIONS'] = f'-Duser.home={home}'
    os.environ['CLUSTER_XENON_TLS_DIR'] = str(tls_dir)
    try:
        return xenon_backend.Server(tls_dir=tls_dir).start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def private_servers(tmp_path):
    """Start private servers on demand; stop them all at the end."""
    started = []

    def start(home=None):
        home = home or tmp_path / 'home'
        (home / '.ssh').mkdir(parents=True, exist_ok=True)
        server = _private_server(home, tmp_path / 'tls')
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()


def _follow_the_advice(error, home, endpoint, server):
    """Run the command a HostKeyError gives, as written, in ``home``; then connect anew."""
    command = re.search(r'run `([^`]+)`', str(error)).group(1)
    done = subprocess.run(['bash', '-c', command], env=dict(os.environ, HOME=str(home)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    remote.forget(endpoint)
    remote.connect(endpoint, server_factory=lambda dead: server)


@pytest.mark.usefixtures('env')
class TestHostKeys:
    pytestmark = LIVE

    def test_unknown_host_key_says_how_to_accept_it(self, env, in_tmp, tmp_path, monkeypatch,
                                                    private_servers):
        home = tmp_path / 'home'
        server = private_servers(home)
        monkeypatch.setenv('HOME', str(home))      # this side looks at the same known_hosts
        name = make_profile(env, 'strict', strict_host_key=True)
        endpoint = remote.from_profile(name)
        remote.connect(endpoint, server_factory=lambda dead: server)
        try:
            with pytest.raises(HostKeyError, match=r'ssh-keyscan -p 2222 127.0.0.1 localhost \| sort -s -k2,2 >>') as caught:
                cluster.Job('true', profile=name).submit()   # a Job alone opens nothing
            assert 'strict_host_key = false' in str(caught.value)
        finally:
            remote.forget(endpoint)

    def test_known_host_key_passes_strict_checking(self, env, in_tmp, tmp_path, monkeypatch,
                                                   private_servers):
        home = tmp_path / 'home'
        (home / '.ssh').mkdir(parents=True)
        shutil.copy(env['CLUSTER_TEST_SSH_KNOWN_HOSTS'], home / '.ssh' / 'known_hosts')
        server = private_servers(home)
        monkeypatch.setenv('HOME', str(home))
        name = make_profile(env, 'strict-known', strict_host_key=True)
        endpoint = remote.from_profile(name)
        remote.connect(endpoint, server_factory=lambda dead: server)
        try:
            assert cluster.Job('echo strict', profile=name).submit().get()[1] == 'strict\n'
        finally:
            remote.forget(endpoint)


    def test_the_advice_works_on_a_fresh_account(self, env, in_tmp, tmp_path, monkeypatch):
        """No ~/.ssh at all: running the HostKeyError's command as written lets it connect."""
        home = tmp_path / 'fresh-home'
        home.mkdir()
        server = _private_server(home, tmp_path / 'tls')
        monkeypatch.setenv('HOME', str(home))
        name = make_profile(env, 'strict-fresh', strict_host_key=True)
        # a fresh JVM's first handshake on a busy machine may take more than the default
        endpoint = remote.from_profile(name, connect_timeout=60)
        try:
            remote.connect(endpoint, server_factory=lambda dead: server)
            with pytest.raises(HostKeyError) as caught:
                cluster.Job('true', profile=name).submit()   # a Job alone opens nothing
            _follow_the_advice(caught.value, home, endpoint, server)
            assert stat.S_IMODE(os.stat(home / '.ssh').st_mode) == 0o700
            assert cluster.Job('echo fresh', profile=name).submit().get()[1] == 'fresh\n'
        finally:
            remote.forget(endpoint)
            server.stop()

    def test_known_hosts_without_the_ecdsa_key_says_so(self, env, in_tmp, tmp_path,
                                                         monkeypatch, private_servers):
        """``ssh`` may record only the host's ed25519 key; Xenon's client checks its ECDSA
        key, so that known_hosts is refused, and the error says why and what to run."""
        home = tmp_path / 'home'
        server = private_servers(home)
        known = subprocess.run(['ssh-keyscan', '-p', env['CLUSTER_TEST_SSH_PORT'], '127.0.0.1',
                                'localhost'], capture_output=True, text=True, check=True).stdout
        (home / '.ssh' / 'known_hosts').write_text(
            ''.join(line + '\n' for line in known.splitlines() if ' ssh-ed25519 ' in line))
        monkeypatch.setenv('HOME', str(home))
        name = make_profile(env, 'strict-ed25519', strict_host_key=True)
        endpoint = remote.from_profile(name, connect_timeout=60)
        remote.connect(endpoint, server_factory=lambda dead: server)
        try:
            with pytest.raises(HostKeyError, match='first key of 127.0.0.1:2222 .* is its '
                               'ssh-ed25519 key.*ECDSA.*ssh-keygen -R') as caught:
                cluster.Job('true', profile=name).submit()   # a Job alone opens nothing
            _follow_the_advice(caught.value, home, endpoint, server)
            assert cluster.Job('echo both', profile=name).submit().get()[1] == 'both\n'
        finally:
            remote.forget(endpoint)
            server.stop()


@pytest.mark.usefixtures('env')
class TestServerDeath:
    pytestmark = LIVE

    def test_get_returns_after_the_xenon_server_was_killed(self, env, in_tmp, tmp_path,
                                                           private_servers):
        key = tmp_path / 'key'        # a key path of its own: a connection of its own
        shutil.copy(env['CLUSTER_TEST_SSH_KEY'], key)
        os.chmod(key, 0o600)
        name = make_profile(env, 'killable', key=str(key))
        endpoint = remote.from_profile(name)
        first = private_servers()
        servers = [first]

        def factory(dead):
            if dead is None:
                return first
            servers.append(private_servers())
            return servers[-1]
        connection = remote.connect(endpoint, server_factory=factory)
        try:
            command = cluster.submit('sleep 2; echo survived', profile=name)
            value = cluster.submit(add, (40, 2), profile=name)
            os.killpg(os.getpgid(first.process.pid), signal.SIGKILL)
            first.process.wait(30)
            assert command.get() == (0, 'survived\n', '')
            assert value.get() == 42
            assert connection.reconnects == 1 and len(servers) == 2
        finally:
            remote.forget(endpoint)




@pytest.mark.remote
def test_threads_share_one_connection(env):
    endpoint = remote.from_profile('remote-slurm')
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(remote.connect(endpoint)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(c) for c in seen}) == 1


@pytest.mark.remote
@pytest.mark.slurm
def test_the_docs_example_runs(env, in_tmp, private_config):
    example = os.path.join(os.path.dirname(__file__), '..', 'docs', 'examples',
                           'remote_pipeline.py')
    result = subprocess.run([sys.executable, example, 'remote-slurm'], cwd=str(in_tmp),
                            env=dict(os.environ, CLUSTER_CONFIG=private_config),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'words: 9' in result.stdout and 'all counted' in result.stdout
    assert 'ran on' in result.stdout
    assert not list(in_tmp.iterdir())   # cleaned, here (and there)


def test_a_job_in_an_unknown_state_is_settled_from_its_exit_code_file(tmp_path):
    """Torque shows a finished job as C without exit status; over SSH the batch code cannot
    read the job's exit-code file, so the watcher reads it through the job's store."""
    from cluster.batch import BatchSystem, JobInfo
    from cluster.queue import Watcher
    from cluster.script import JobFiles
    from cluster.run.storage import LocalStore

    class Finished(BatchSystem):
        name = 'fake'

        def submit(self, files, dependencies=(), options=None):
            return '7'

        def statuses(self, job_ids=None, user=None):
            return {'7': JobInfo('7', State.UNKNOWN, reason='exit status not known yet')}

        def cancel(self, job_ids):
            pass

    files = JobFiles(str(tmp_path), 'job', 'cluster', 'torque')
    watcher = Watcher(Finished(), user='someone', interval=0.0)
    watcher.track('7', files, LocalStore())
    assert watcher.info('7').state is State.UNKNOWN      # no exit-code file yet
    (tmp_path / 'job.cluster.code').write_text('3\n')
    info = watcher.info('7')
    assert (info.state, info.exitcode) == (State.FAILED, 3)

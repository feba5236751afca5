#!/usr/bin/env python
"""Recovery after the SSH sessions die (issue 11 item 3), on an sshd of its own.

    .venv/bin/python benchmarks/remote_sessions.py              # outages of 0 and 5 s
    .venv/bin/python benchmarks/remote_sessions.py --outage 10

A second sshd (the test sshd's configuration, another port, a pid file of its own) serves
one remote job (``sleep 15; echo survived``). Then the whole sshd is killed, listener and
session processes, and started again after ``--outage`` seconds (0: only the session
processes die, the listener stays up). Printed: how long after sshd answered again a
remote command issued during the outage returned, and whether ``get()`` of the job
gave the right value. Nothing of the shared test sshd is touched.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _env import STATE, read_env  # noqa: E402

CONFIG = os.path.join(STATE, 'sshd', 'sshd_config')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def start_sshd(port: int, folder: str) -> psutil.Process:
    """The test sshd's configuration on ``port``, with a pid file and log of its own."""
    pidfile = os.path.join(folder, 'sshd.pid')
    config = os.path.join(folder, 'sshd_config')
    with open(CONFIG) as handle:
        lines = [line for line in handle.read().splitlines()
                 if not line.startswith(('Port ', 'PidFile '))]
    with open(config, 'w') as handle:
        handle.write('\n'.join([f'Port {port}', f'PidFile {pidfile}', *lines]) + '\n')
    if os.path.exists(pidfile):
        os.unlink(pidfile)      # a killed sshd leaves its pid file
    subprocess.run(['/usr/sbin/sshd', '-f', config, '-E', os.path.join(folder, 'sshd.log')],
                   check=True)
    deadline = time.monotonic() + 10
    while not os.path.exists(pidfile) or not os.path.getsize(pidfile):
        if time.monotonic() > deadline:
            raise SystemExit('the private sshd did not start')
        time.sleep(0.05)
    with open(pidfile) as handle:
        return psutil.Process(int(handle.read()))


def kill_sessions(listener: psutil.Process, and_listener: bool) -> int:
    victims = listener.children(recursive=True) + ([listener] if and_listener else [])
    for process in victims:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=10)
    return len(victims)


def one_outage(outage: float, folder: str) -> str:
    import cluster
    from cluster import config_file
    from cluster.run import remote
    env = read_env('sshd.env', 'remote.env')
    port = free_port()
    listener = start_sshd(port, folder)
    name = f'sessions{port}'
    config_file.set_profile(name, {
        'remote': f'ssh://{env["CLUSTER_TEST_SSH_USER"]}@127.0.0.1:{port}'
                  f'{env["CLUSTER_TEST_REMOTE_WORKDIR"]}',
        'qtype': 'slurm', 'key': env['CLUSTER_TEST_SSH_KEY'], 'strict_host_key': False,
        'python': env['CLUSTER_TEST_REMOTE_PYTHON']}, update=False)
    connection = remote.connect(remote.from_profile(name))
    try:
        job = cluster.submit('sleep 15; echo survived', profile=name)
        assert job.id
        killed = kill_sessions(listener, and_listener=outage > 0)
        result: dict = {}

        def command() -> None:
            result['value'] = connection.run(['echo', 'back'])
            result['at'] = time.monotonic()
        runner = threading.Thread(target=command)
        runner.start()
        if outage > 0:
            time.sleep(outage)
            listener = start_sshd(port, folder)
        back = time.monotonic()
        runner.join()
        value = job.get()
        return (f'outage {outage:>4.1f} s ({killed} sshd processes killed): the command '
                f'returned {result["value"][:2]} {result["at"] - back:.2f} s after sshd '
                f'answered again; get() -> {value}; logins again: '
                f'{connection.sessions_reopened}')
    finally:
        remote.forget(remote.from_profile(name))
        kill_sessions(listener, and_listener=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--outage', type=float, nargs='+', default=[0.0, 5.0])
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix='cluster-bench-sessions-')
    os.environ['CLUSTER_CONFIG'] = os.path.join(folder, 'cluster.ini')
    os.chdir(folder)
    for outage in args.outage:
        print(one_outage(outage, folder), flush=True)


if __name__ == '__main__':
    main()

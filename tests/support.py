"""Small helpers every test module may use: real components are required, never faked."""
from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
from typing import Dict

import pytest

# Strict: a missing real component fails. scripts/test.sh (the README's test command and
# .ci/run) sets CLUSTER_TEST_STRICT, so it never skips whatever the CI runner exports.
STRICT_VARIABLES = ('CI', 'CLUSTER_TEST_STRICT')


def strict() -> bool:
    """True when missing real components must fail the run instead of skipping."""
    return any(os.environ.get(name) for name in STRICT_VARIABLES)


def require(component: str, ready: bool, how: str) -> None:
    """Fail when strict (the full test command, CI) and a real component is missing;
    skip on a workstation that lacks it."""
    if ready:
        return
    message = f'{component} is not running; start it with {how}'
    if strict():
        pytest.fail(message)
    pytest.skip(message)


def read_env_file(path: str) -> Dict[str, str]:
    """NAME=value lines of a set-up script's state file."""
    values = {}
    with open(path) as handle:
        for line in handle:
            name, sep, value = line.strip().partition('=')
            if sep:
                values[name] = value
    return values


SGE_HOW = 'bash tests/cluster/sge_up.sh'


def sge_env_file() -> str:
    """Where tests/cluster/sge_up.sh writes its env file."""
    return os.path.join(os.environ.get('CLUSTER_TEST_SGE', '/opt/cluster-test-sge'), 'env.sh')


def sge_env() -> Dict[str, str]:
    """The environment that reaches the test Grid Engine: os.environ with SGE_ROOT, SGE_CELL,
    the ports and SGE's own bin directory first on PATH (its qsub, never /usr/bin's Torque one).

    Fails when strict (skips otherwise) when sge_up.sh has not run or qmaster does not answer.
    """
    path = sge_env_file()
    require('Grid Engine', os.path.isfile(path), f'{SGE_HOW} (no {path})')
    values = {}
    with open(path) as handle:
        for line in handle:
            name, sep, value = line.strip().removeprefix('export ').partition('=')
            if sep and name != 'PATH':
                values[name] = value
    env = dict(os.environ, **values)
    env['PATH'] = values['SGE_BIN'] + os.pathsep + os.environ.get('PATH', '')
    qstat = os.path.join(values['SGE_BIN'], 'qstat')
    try:
        answered = subprocess.run([qstat, '-help'], env=env, capture_output=True, text=True,
                                  timeout=20).stdout.startswith('SGE')
        up = answered and subprocess.run([os.path.join(values['SGE_BIN'], 'qconf'), '-sh'],
                                         env=env, capture_output=True,
                                         timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        up = False
    require('Grid Engine (sge_qmaster)', up, SGE_HOW)
    return env


def end_time_now(job_id: str, timeout: float = 60) -> None:
    """Move a running Slurm job's end time to a second from now, so that slurmctld ends
    it TIMEOUT at its next periodic check (every 30 s): a real time limit without
    waiting Slurm's whole minutes. Needs root (scontrol update EndTime)."""
    if os.geteuid() != 0:
        require('root (scontrol update EndTime)', False, 'run the tests as root')
    deadline, refused = time.monotonic() + timeout, ''
    while time.monotonic() < deadline:
        shown = subprocess.run(['scontrol', '-o', 'show', 'job', job_id], check=True,
                               capture_output=True, text=True).stdout
        if 'JobState=RUNNING' in shown:  # a pending job's StartTime is only a guess
            started = datetime.datetime.strptime(shown.split('StartTime=')[1].split()[0],
                                                 '%Y-%m-%dT%H:%M:%S')
            # an EndTime before StartTime or now is refused
            end = max(started, datetime.datetime.now()) + datetime.timedelta(seconds=1)
            update = subprocess.run(['scontrol', 'update', f'JobId={job_id}',
                                     f'EndTime={end:%Y-%m-%dT%H:%M:%S}'],
                                    capture_output=True, text=True)
            if update.returncode == 0:
                return
            refused = update.stdout + update.stderr
        time.sleep(0.2)
    raise AssertionError(f'could not move the end time of job {job_id}: {refused}')


def until(condition, timeout: float = 30.0, what: str = 'condition', every: float = 0.1):
    """Poll ``condition()`` every ``every`` s until it gives a true value, and return that
    value; the test fails once ``timeout`` s have passed without one."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f'not within {timeout:g} s: {what}')
        time.sleep(every)  # polling a condition with a deadline


def most_at_once(intervals) -> int:
    """The most (start, end) intervals that overlap at one moment."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def first_line_then_kill(script: str, args) -> str:
    """Run ``python -c script *args``, read the first line it prints, then SIGKILL it (a
    driver that dies without cleaning up); that line."""
    driver = subprocess.Popen([sys.executable, '-c', script, *args], stdout=subprocess.PIPE,
                              text=True)
    try:
        line = driver.stdout.readline()
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)
    assert driver.returncode == -signal.SIGKILL
    return line

#!/usr/bin/env python
"""Remote-path benchmark of issue 6: the same jobs through SSH/Xenon and on the login node.

    .venv/bin/python benchmarks/remote.py            # 50 command + 50 function jobs
    .venv/bin/python benchmarks/remote.py --jobs 20

Each kind of job (``echo`` commands, a small function) is run twice on the same Slurm:
directly from the login node (``qtype='slurm'``) and through the remote path (profile
``remote = ssh://clustertest@127.0.0.1:2222/...``: commands over Xenon's ssh adaptor,
files over sftp). Phases are timed apart so that Slurm's own run time cancels out:

* submit: write + stage + sbatch of every job, one after the other;
* wait:   until Slurm has run them all (the watcher's polls);
* collect: ``get()`` of every job once all have ended (sftp pulls on the remote path).

Overhead per job = (remote - direct) of submit + collect, divided by the number of jobs.
During the wait the remote commands are counted: the status commands per poll interval
(target: 1, whatever the number of jobs).

Needs what the remote tests need: bash scripts/setup_xenon.sh, tests/cluster/slurm_up.sh,
sshd_up.sh and remote_up.sh (it reads their env files in /var/lib/cluster-test).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Callable, Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _env import STATE, read_env  # noqa: E402

INTERVAL = 0.5


def square(x: int) -> int:
    """The function job."""
    return x * x


def _config(workdir: str) -> str:
    env = read_env('sshd.env', 'remote.env')
    if env is None:
        raise SystemExit(f'{STATE}/sshd.env or remote.env is missing: run scripts/test.sh once')
    url = (f'ssh://{env["CLUSTER_TEST_SSH_USER"]}@{env["CLUSTER_TEST_SSH_HOST"]}:'
           f'{env["CLUSTER_TEST_SSH_PORT"]}{env["CLUSTER_TEST_REMOTE_WORKDIR"]}')
    path = os.path.join(workdir, 'cluster.ini')
    with open(path, 'w') as handle:
        handle.write(f'[queue]\nqueue_update = {INTERVAL}\n\n[profile.bench]\nremote = {url}\n'
                     f'qtype = slurm\nkey = {env["CLUSTER_TEST_SSH_KEY"]}\n'
                     f'python = {env["CLUSTER_TEST_REMOTE_PYTHON"]}\nstrict_host_key = false\n')
    return path


def run_phase(make: Callable[[int], object], count: int, where: dict) -> Dict[str, float]:
    """Submit ``count`` jobs, wait for all, collect all; seconds per phase."""
    import cluster
    started = time.perf_counter()
    jobs = [make(i) for i in range(count)]
    submitted = time.perf_counter()
    cluster.Queue(**where).wait(jobs)
    waited = time.perf_counter()
    results = [job.get() for job in jobs]
    collected = time.perf_counter()
    assert len(results) == count
    for job in jobs:
        job.clean(delete_outputs=True)
    return {'submit': submitted - started, 'wait': waited - submitted,
            'collect': collected - waited, 'jobs': jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--jobs', type=int, default=50)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='cluster-bench-remote-')
    os.environ['CLUSTER_CONFIG'] = _config(workdir)
    os.chdir(workdir)
    import cluster
    from cluster.run import remote

    warm = cluster.submit('true', profile='bench')          # JVM, ssh login, first sbatch
    warm.get()
    connection = remote.connect(remote.from_profile('bench'))
    cluster.submit('true', qtype='slurm').get()
    kinds = {
        'command': lambda where: (lambda i: cluster.submit(f'echo {i}', **where)),
        'function': lambda where: (lambda i: cluster.submit(square, (i,), **where)),
    }
    print(f'{args.jobs} jobs of each kind on Slurm 22.05, poll interval {INTERVAL} s; '
          f'seconds for all jobs (per job)')
    print(f'{"kind":<9} {"path":<7} {"submit":>14} {"wait":>7} {"collect":>14} '
          f'{"overhead/job":>13} {"ssh cmds/poll":>14}')
    for kind, factory in kinds.items():
        direct = run_phase(factory({'qtype': 'slurm'}), args.jobs, {'qtype': 'slurm'})
        watcher = warm._watcher
        polls0, counts0 = watcher.polls, dict(connection.commands)
        remote_run = run_phase(factory({'profile': 'bench'}), args.jobs, {'profile': 'bench'})
        polls = watcher.polls - polls0
        during = {k: v - counts0.get(k, 0) for k, v in connection.commands.items()}
        status = during.get('squeue', 0)
        overhead = ((remote_run['submit'] - direct['submit'])
                    + (remote_run['collect'] - direct['collect'])) / args.jobs
        n = args.jobs
        for label, phases, extra in (('direct', direct, ''),
                                     ('remote', remote_run,
                                      f'{overhead:>13.3f} {status / max(polls, 1):>14.2f}')):
            print(f'{kind:<9} {label:<7} {phases["submit"]:>6.2f} ({phases["submit"] / n:.3f}) '
                  f'{phases["wait"]:>7.2f} {phases["collect"]:>6.2f} '
                  f'({phases["collect"] / n:.3f}) {extra}')
        print(f'          remote commands: {dict(sorted(during.items()))} in {polls} polls')


if __name__ == '__main__':
    main()

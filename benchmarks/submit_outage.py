#!/usr/bin/env python
"""Issue 11 (items 1 and 7): submissions while slurmctld is frozen, on the real Slurm.

    bash tests/cluster/slurm_up.sh
    .venv/bin/python benchmarks/submit_outage.py                    # 20 jobs, 20 s outage
    .venv/bin/python benchmarks/submit_outage.py --qtype torque --jobs 10 --outage 15

Root only: once ``--before`` jobs have their ids, slurmctld is stopped with SIGSTOP while
the submissions go on, and resumed with SIGCONT after ``--outage`` seconds (always, also
on errors). Each job is ``echo N``. Reported (times from the freeze):

* right: jobs whose id came back and whose ``get()`` is ``(0, 'N\\n', '')``, each found once
  in sacct;
* duplicates: sacct rows beyond the first for one job;
* phantom refusals: jobs whose id raised, yet sacct shows them;
* time until every ``submit()`` call returned, and until every id was known;
* the first WARNING a ``cluster`` logger gave, seconds after the freeze.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Dict, List

PIDFILE = '/run/slurm/slurmctld.pid'


class Recorder(logging.Handler):
    """Keeps (time, level, message) of every record."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: List[tuple] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.created, record.levelno, record.getMessage()))


def accounted(prefix: str) -> Dict[str, List[str]]:
    """sacct ids by job name (less a unique-name suffix) for names starting with prefix."""
    out = subprocess.run(['sacct', '-X', '-n', '-P', '-o', 'JobID,JobName', '-S', 'now-1days'],
                         capture_output=True, text=True, check=True).stdout
    rows: Dict[str, List[str]] = {}
    for line in out.splitlines():
        job_id, _, name = line.partition('|')
        if name.startswith(prefix):
            rows.setdefault(re.sub(r'\.c[0-9a-f]{10}$', '', name), []).append(job_id)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--jobs', type=int, default=20)
    parser.add_argument('--outage', type=float, default=20.0, help='seconds frozen')
    parser.add_argument('--qtype', default='slurm', choices=['slurm', 'torque'])
    parser.add_argument('--before', type=int, default=3, help='jobs submitted before it')
    args = parser.parse_args()
    import cluster
    recorder = Recorder()
    logging.getLogger('cluster').addHandler(recorder)
    logging.getLogger('cluster').setLevel(logging.INFO)
    os.chdir(tempfile.mkdtemp(prefix='submit_outage.'))
    prefix = f'out{uuid.uuid4().hex[:8]}'
    jobs: list = []
    outcome: dict = {}
    times: dict = {}
    pid = int(open(PIDFILE).read())

    def submit_all() -> None:
        for number in range(args.jobs):
            jobs.append(cluster.Job(f'echo {number}', name=prefix, qtype=args.qtype).submit())
        times['submitted'] = time.time()
        for number, job in enumerate(jobs):
            try:
                outcome[number] = job.id
            except Exception as exc:  # noqa: BLE001 - counted below
                outcome[number] = exc
        times['ids'] = time.time()

    worker = threading.Thread(target=submit_all, daemon=True)
    worker.start()
    while worker.is_alive() and sum(1 for job in jobs[:args.before]
                                    if 'id=submitting' not in repr(job)) < args.before:
        time.sleep(0.01)
    frozen = time.time()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(args.outage)
    finally:
        os.kill(pid, signal.SIGCONT)
    worker.join()
    names = [job.name for job in jobs]
    got = {}
    for number, job in enumerate(jobs):
        if not isinstance(outcome[number], Exception):
            got[number] = job.get() == (0, f'{number}\n', '')
    deadline = time.time() + 60
    rows = accounted(prefix)
    while sum(1 for n in names if n in rows) < len(got) and time.time() < deadline:
        time.sleep(1)
        rows = accounted(prefix)
    right = sum(1 for n, ok in got.items() if ok and len(rows.get(names[n], [])) == 1)
    duplicates = sum(max(0, len(ids) - 1) for ids in rows.values())
    failed = {n: o for n, o in outcome.items() if isinstance(o, Exception)}
    phantom = sum(1 for n in failed if names[n] in rows)
    warnings = [t - frozen for t, level, _ in recorder.records if level >= logging.WARNING]
    print(f'{args.qtype}: {args.jobs} submissions, slurmctld frozen {args.outage:.0f} s')
    print(f'  right {right} of {args.jobs}, duplicates {duplicates}, phantom refusals '
          f'{phantom}, other errors {len(failed) - phantom}')
    for number, problem in sorted(failed.items())[:3]:
        print(f'    job {number}: {type(problem).__name__}: {str(problem)[:160]}')
    print(f'  every submit() returned after {times["submitted"] - frozen:.1f} s, '
          f'every id known after {times["ids"] - frozen:.1f} s')
    print('  first WARNING after ' + (f'{warnings[0]:.1f} s' if warnings else 'never'))
    first = next((m for _, level, m in recorder.records if level >= logging.WARNING), None)
    if first:
        print(f'    {first[:200]}')
    return 0 if right == args.jobs and not duplicates else 1


if __name__ == '__main__':
    sys.exit(main())

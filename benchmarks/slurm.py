#!/usr/bin/env python
"""Slurm benchmark of issue 4 (item 7): the Job API against a raw sbatch loop on the real Slurm.

    bash tests/cluster/slurm_up.sh
    .venv/bin/python benchmarks/slurm.py                 # 200 function + 200 command jobs
    .venv/bin/python benchmarks/slurm.py --jobs 50       # 50 + 50
    .venv/bin/python benchmarks/slurm.py --raw-only      # only the raw loop and the shims

Every ``sbatch``/``squeue``/``sacct``/``scancel`` the package runs is counted through a PATH
shim: a directory of small scripts that log their name and time, then exec the real program.

(raw) N + N tiny scripts (N start a Python, N echo) submitted by a plain
      ``sbatch --parsable`` loop, then one ``squeue -j <all ids>`` per poll interval until
      every job has left the running states.
(api) N function jobs (``cluster.submit``) + N command jobs (``cluster.Job(...).submit()``),
      then ``get()`` on each; the same poll interval (``queue_update``).

Targets: status commands per poll interval while waiting = 1 (plus at most 1 sacct),
whatever the job count; submission wall time <= 1.2 x the raw sbatch loop.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROGRAMS = ('sbatch', 'squeue', 'sacct', 'scancel')
OPEN_STATES = ('PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'REQUEUED', 'RESIZING',
               'SUSPENDED')


def make_shims(directory: str, log: str) -> Dict[str, str]:
    """Write one logging wrapper per program into ``directory``; return the real paths."""
    real = {}
    for program in PROGRAMS:
        found = shutil.which(program)
        if not found:
            raise SystemExit(f'{program} not found: start Slurm with tests/cluster/slurm_up.sh')
        real[program] = found
        path = os.path.join(directory, program)
        with open(path, 'w') as handle:
            handle.write('#!/bin/bash\n'  # bash 5: $EPOCHREALTIME costs no extra process
                         'start=$EPOCHREALTIME\n'
                         f'"{found}" "$@"\n'
                         'code=$?\n'
                         f'printf "%s %s {program}\\n" "$start" "$EPOCHREALTIME" >> "{log}"\n'
                         'exit $code\n')
        os.chmod(path, stat.S_IRWXU)
    return real


def read_log(log: str) -> List[Tuple[float, float, str]]:
    """(start, end, program) of every shimmed call so far."""
    if not os.path.exists(log):
        return []
    with open(log) as handle:
        return [(float(start), float(end), name) for start, end, name in
                (line.split() for line in handle if line.strip())]


def count(entries: List[Tuple[float, float, str]], start: float, end: float) -> Dict[str, int]:
    found = {program: 0 for program in PROGRAMS}
    for began, _, name in entries:
        if start <= began <= end:
            found[name] += 1
    return found


def seconds_in(entries: List[Tuple[float, float, str]], program: str, start: float,
               end: float) -> float:
    """Time spent inside ``program`` for calls started between start and end."""
    return sum(stop - began for began, stop, name in entries
               if name == program and start <= began <= end)


def square(x: int) -> int:
    """The function job."""
    return x * x


def raw_loop(workdir: str, jobs: int, interval: float) -> Dict[str, float]:
    """Plain sbatch loop over written scripts, then one squeue per interval.

    It runs the same shims as the Job API (``sbatch`` found on PATH), so the shim's cost
    is on both sides of the ratio.
    """
    scripts = []
    for index in range(jobs):
        path = os.path.join(workdir, f'raw_{index}.sh')
        # the first half starts a Python like a function job does, the rest echo
        work = (f'{sys.executable} -c "print({index} * {index})"' if index < jobs // 2
                else f'echo {index}')
        with open(path, 'w') as handle:
            handle.write(f'#!/bin/bash\n#SBATCH --output={workdir}/raw_{index}.out\n{work}\n')
        scripts.append(path)
    t0 = time.time()
    start = time.perf_counter()
    ids = [subprocess.run(['sbatch', '--parsable', path], capture_output=True, text=True,
                          check=True).stdout.strip().split(';')[0] for path in scripts]
    submitted = time.perf_counter()
    t_submitted = time.time()
    polls = 0
    while True:
        polls += 1
        out = subprocess.run(['squeue', '-h', '-t', 'all', '-o', '%i %T', '-j',
                              ','.join(ids)], capture_output=True, text=True).stdout
        if not any(line.split()[1] in OPEN_STATES for line in out.splitlines() if line.strip()):
            break
        time.sleep(interval)
    done = time.perf_counter()
    return {'submit': submitted - start, 'total': done - start, 'polls': polls,
            't0': t0, 't_submitted': t_submitted}


def api_run(workdir: str, jobs: int, interval: float, log: str) -> Dict[str, object]:
    """N function jobs + N command jobs through the Job API; counts from the shim log."""
    import cluster
    os.chdir(workdir)
    t0 = time.time()
    start = time.perf_counter()
    submitted_jobs = [cluster.submit(square, (i,), qtype='slurm', name=f'f{i}')
                      for i in range(jobs)]
    submitted_jobs += [cluster.Job(f'echo {i}', qtype='slurm', name=f'c{i}').submit()
                       for i in range(jobs)]
    assert all(job.id for job in submitted_jobs)  # submission is over when every id is known
    t_submitted = time.time()
    submitted = time.perf_counter()
    results = [job.get() for job in submitted_jobs]
    done = time.perf_counter()
    t_done = time.time()
    wrong = [i for i in range(jobs) if results[i] != i * i]
    wrong += [i for i in range(jobs) if results[jobs + i][:2] != (0, f'{i}\n')]
    entries = read_log(log)
    waiting = t_done - t_submitted
    return {'submit': submitted - start, 'total': done - start, 'wrong': wrong,
            'during_submit': count(entries, t0, t_submitted),
            'during_wait': count(entries, t_submitted, t_done + 0.5),
            'sbatch_seconds': seconds_in(entries, 'sbatch', t0, t_submitted),
            'wait_seconds': waiting, 'intervals': max(1, math.ceil(waiting / interval))}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--jobs', type=int, default=200, help='function jobs (and command jobs)')
    parser.add_argument('--interval', type=float, default=1.0, help='queue_update in seconds')
    parser.add_argument('--raw-only', action='store_true')
    args = parser.parse_args(argv)
    base = tempfile.mkdtemp(prefix='bench_slurm_')
    shims, log = os.path.join(base, 'shims'), os.path.join(base, 'calls.log')
    os.makedirs(shims)
    make_shims(shims, log)
    config = os.path.join(base, 'cluster.ini')
    with open(config, 'w') as handle:
        handle.write(f'[queue]\nqueue_update = {args.interval}\nmax_queue_len = 100000\n')
    os.environ['CLUSTER_CONFIG'] = config
    os.environ['PATH'] = shims + os.pathsep + os.environ['PATH']
    total = 2 * args.jobs
    print(f'benchmarks/slurm.py: {args.jobs} function + {args.jobs} command jobs, '
          f'poll interval {args.interval} s, {os.cpu_count()} cores, files in {base}')
    print('(other users of the same Slurm, e.g. parallel test runs, slow both sides alike)')

    raw_dir = os.path.join(base, 'raw')
    os.makedirs(raw_dir)
    raw = raw_loop(raw_dir, total, args.interval)
    raw_sbatch = seconds_in(read_log(log), 'sbatch', raw['t0'], raw['t_submitted'])
    print(f'\n(raw) sbatch loop of {total}: submit {raw["submit"]:.2f} s '
          f'({raw["submit"] / total * 1000:.1f} ms/job, of which inside sbatch '
          f'{raw_sbatch / total * 1000:.1f}), all done after {raw["total"]:.2f} s, '
          f'{raw["polls"]} squeue polls')
    if args.raw_only:
        return 0

    api_dir = os.path.join(base, 'api')
    os.makedirs(api_dir)
    api = api_run(api_dir, args.jobs, args.interval, log)
    sub, wait = api['during_submit'], api['during_wait']
    print(f'(api) Job API, {total} jobs: submit {api["submit"]:.2f} s '
          f'({api["submit"] / total * 1000:.1f} ms/job, of which inside sbatch '
          f'{api["sbatch_seconds"] / total * 1000:.1f}), all results after {api["total"]:.2f} s; '
          f'wrong results: {len(api["wrong"])}')
    print(f'      during submission: sbatch {sub["sbatch"]}, squeue {sub["squeue"]}, '
          f'sacct {sub["sacct"]}')
    print(f'      while waiting ({api["wait_seconds"]:.1f} s = {api["intervals"]} started '
          'intervals): '
          f'squeue {wait["squeue"]}, sacct {wait["sacct"]}, sbatch {wait["sbatch"]}')
    squeue_rate = wait['squeue'] / api['intervals']
    sacct_rate = wait['sacct'] / api['intervals']
    ratio = api['submit'] / raw['submit']
    print('\ntargets')
    rows = [('squeue per poll interval while waiting', squeue_rate, '<=', 1.0),
            ('sacct per poll interval while waiting', sacct_rate, '<=', 1.0),
            ('sbatch calls per job', (sub['sbatch'] + wait['sbatch']) / total, '<=', 1.0),
            ('submission time / raw sbatch loop', ratio, '<=', 1.2)]
    failed = 0
    for label, value, op, target in rows:
        ok = value <= target + 1e-9
        failed += not ok
        print(f'    {label:42} {value:8.2f}  {op} {target:<4}  {"MET" if ok else "MISSED"}')
    return 1 if api['wrong'] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

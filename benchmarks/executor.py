#!/usr/bin/env python
"""Executor benchmark of issue 13: cluster.Executor against its peers, in the same run.

    bash tests/cluster/slurm_up.sh                   # the peers: scripts/install.sh --test
    .venv/bin/python benchmarks/executor.py          # 10,000 calls (Slurm, local), 300 (array)
    .venv/bin/python benchmarks/executor.py --only local --n 50000 --json out.json
    .venv/bin/python benchmarks/executor.py --only array --array-repeat 3   # 300 calls
    .venv/bin/python benchmarks/executor.py --small  # a few calls: benchmark still works

(slurm)  N tiny calls: dask-jobqueue ``SLURMCluster`` with 2 one-core workers and
         ``client.map``, worker start-up included; ``cluster.Executor(qtype='slurm')``.
(array)  300 tiny calls: submitit ``AutoExecutor.map_array``; ``cluster.Executor``;
         ``--array-repeat`` times (1), the side going first alternating.
(local)  N tiny calls: ``ProcessPoolExecutor(2).map(chunksize=C)``, start-up included;
         ``cluster.Executor(qtype='local')`` with the same chunksize. Each is run
         ``--repeat`` times (7), in turn; the rows show the median, min and max, and the
         ratio is of the medians.

Wall time is to all results (checked by their sum). Every sbatch/squeue/sacct/scancel is
counted through PATH shims (benchmarks/slurm.py). Targets: slurm <= 0.5x dask-jobqueue
with sbatch <= ceil(N / MaxArraySize) + 1; array >= 20x faster than submitit; local <= 1.2x.
A missing ``cluster.Executor`` prints "not available yet" for its rows; no figure is made up.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

ROWS = {'slurm': 'Slurm, N calls', 'array': 'Slurm, array calls', 'local': 'local, N calls'}
PARTITION = 'debug'      # the test Slurm's one partition (tests/cluster/slurm_up.sh)


def executor_class() -> Optional[type]:
    """cluster.Executor, or None while it does not exist."""
    try:
        import cluster
    except ImportError as exc:
        print(f'import cluster failed: {exc}', file=sys.stderr)
        return None
    return getattr(cluster, 'Executor', None)


def max_array_size() -> int:
    """Slurm's MaxArraySize (``scontrol show config``)."""
    out = subprocess.run(['scontrol', 'show', 'config'], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        key, _, value = line.partition('=')
        if key.strip() == 'MaxArraySize':
            return int(value.strip())
    raise SystemExit('scontrol show config lists no MaxArraySize')


def run_rows(args: argparse.Namespace, base: str, log: str, name: str) -> List[Dict]:
    """Every row the options ask for, peers first within a pair."""
    from _peers import dask_jobqueue_body, executor_body, measure, not_available
    factory = executor_class()
    rows: List[Dict] = []

    def ours(row: str, n: int, chunksize: Optional[int], **options: object) -> None:
        tool = f"cluster.Executor(qtype='{options['qtype']}')"
        if factory is None:
            print(f'{ROWS[row]}: cluster.Executor: not available yet', flush=True)
            rows.append(not_available(row, tool, n))
            return
        rows.append(measure(row, tool, 'cluster', n,
                            executor_body(factory, chunksize, **options), log))
        report(rows[-1])

    if args.only in (None, 'slurm'):
        folder = os.path.join(base, 'dask')
        rows.append(measure('slurm', 'dask-jobqueue', 'peer', args.n,
                            dask_jobqueue_body(name, folder, PARTITION), log))
        report(rows[-1])
        ours('slurm', args.n, None, qtype='slurm', cores=1, time='00:10:00')
    if args.only in (None, 'slurm', 'array'):
        rows += array_rows(args, base, log, name, factory)
    if args.only in (None, 'local'):
        rows += local_rows(args, log, factory)
    return rows


def array_rows(args: argparse.Namespace, base: str, log: str, name: str,
               factory: Optional[type]) -> List[Dict]:
    """The array pair, ``--array-repeat`` times. Which side goes first alternates: jobs
    others submit during a long row queue up (FIFO) before the next row's. Each side's
    row has the median wall, every run's in ``walls``, and in ``queue`` the jobs of
    others that squeue listed as each run started."""
    from _peers import executor_body, measure, not_available, submitit_body
    tool = "cluster.Executor(qtype='slurm')"
    sides = [('peer', 'submitit map_array',
              submitit_body(name, os.path.join(base, 'submitit'), PARTITION))]
    if factory is not None:
        sides.append(('cluster', tool, executor_body(factory, None, qtype='slurm', cores=1,
                                                     time='00:10:00')))
    runs: Dict[str, List[Dict]] = {side: [] for side, _, _ in sides}
    for turn in range(args.array_repeat):
        for side, label, body in (sides[::-1] if turn % 2 else sides):
            queue = others_jobs(name)
            runs[side].append(dict(measure('array', label, side, args.n_array, body, log),
                                   queue=queue))
            report(runs[side][-1])
    rows = [dict(median_row(runs[side]), queue=[run['queue'] for run in runs[side]])
            for side, _, _ in sides]
    if factory is None:
        print(f'{ROWS["array"]}: cluster.Executor: not available yet', flush=True)
        rows.append(not_available('array', tool, args.n_array))
    return rows


def others_jobs(name: str) -> Optional[int]:
    """Jobs of others (not of this run) that squeue lists now: the load a run starts in."""
    out = subprocess.run(['squeue', '-h', '-a', '-o', '%j'], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return sum(1 for job in out.stdout.split() if not job.startswith(name))


def local_rows(args: argparse.Namespace, log: str, factory: Optional[type]) -> List[Dict]:
    """The local pair, measured ``--repeat`` times in turn (peer, cluster, peer...): each
    side's row has the median wall time, and every run's in ``walls``."""
    from _peers import executor_body, measure, not_available, process_pool_body
    tool = "cluster.Executor(qtype='local')"
    sides = [('peer', f'ProcessPoolExecutor(2) chunksize={args.chunksize}',
              process_pool_body(args.chunksize))]
    if factory is not None:
        sides.append(('cluster', tool, fresh_queue(executor_body(factory, args.chunksize,
                                                                 qtype='local'))))
    runs: Dict[str, List[Dict]] = {side: [] for side, _, _ in sides}
    for _ in range(args.repeat):
        for side, name, body in sides:
            runs[side].append(measure('local', name, side, args.n, body, log))
    rows = []
    for side, _, _ in sides:
        rows.append(median_row(runs[side]))
        report(rows[-1])
    if factory is None:
        print(f'{ROWS["local"]}: cluster.Executor: not available yet', flush=True)
        rows.append(not_available('local', tool, args.n))
    return rows


def fresh_queue(body):
    """``body``, with the local JobQueue shut down after each run (not timed), so that every
    run starts its own queue as the pool starts its processes."""
    def run(stack, xs, seconds):
        from cluster import jobqueue
        stack.callback(lambda: jobqueue.JQUEUE and jobqueue.JQUEUE.shutdown())
        return body(stack, xs, seconds)
    return run


def median_row(runs: List[Dict]) -> Dict:
    """The run of median wall time (the first failing run, if any), with all walls."""
    failed = [run for run in runs if run['error']]
    walls = sorted(run['wall'] for run in runs if run['wall'] is not None)
    row = dict(failed[0] if failed else
               sorted(runs, key=lambda run: run['wall'])[(len(runs) - 1) // 2])
    row['walls'] = [run['wall'] for run in runs]
    if walls and not failed:
        row['wall'] = statistics.median(walls)
        row['seconds'] = dict(row.get('seconds') or {}, min=walls[0], max=walls[-1])
        row['tool'] += f' (median of {len(runs)})' if len(runs) > 1 else ''
    return row


def report(row: Dict) -> None:
    """One line per finished row, as it finishes."""
    if row['error']:
        print(f"{ROWS[row['row']]}: {row['tool']}: FAILED: {row['error']}", flush=True)
    else:
        print(f"{ROWS[row['row']]}: {row['tool']}: {row['calls']} calls, all results after "
              f"{row['wall']:.3f} s (close {row['close']:.3f} s{seconds(row)}), {commands(row)}"
              + (f", others' jobs listed at its start: {row['queue']}" if 'queue' in row
                 else ''), flush=True)


def seconds(row: Dict) -> str:
    return ''.join(f', {what} {value:.3f} s' for what, value in (row.get('seconds') or {}).items())


def commands(row: Dict) -> str:
    found = row.get('commands') or {}
    return ', '.join(f'{program} {found.get(program, 0)}' for program in
                     ('sbatch', 'squeue', 'sacct', 'scancel'))


def targets(rows: List[Dict], array_limit: Optional[int]) -> List[Dict]:
    """The issue's targets: ratio cluster/peer (array: speed-up), met or not (None: n/a)."""
    def pair(row: str):
        peer = next((r for r in rows if r['row'] == row and r['side'] == 'peer'), None)
        mine = next((r for r in rows if r['row'] == row and r['side'] == 'cluster'), None)
        if peer is None or mine is None:
            return None, None, None
        if peer['wall'] is None or mine['wall'] is None or not mine['ok']:
            return peer, mine, None
        return peer, mine, mine['wall'] / peer['wall']

    found = []
    for row, goal in (('slurm', 'wall <= 0.5 x dask-jobqueue'),
                      ('array', '>= 20 x faster than submitit map_array'),
                      ('local', 'wall <= 1.2 x ProcessPoolExecutor(2)')):
        peer, mine, ratio = pair(row)
        if peer is None:
            continue
        met = None
        if ratio is not None:
            met = ratio <= 0.5 if row == 'slurm' else (1 / ratio >= 20 if row == 'array'
                                                        else ratio <= 1.2)
        found.append({'row': row, 'target': goal, 'ratio': ratio, 'met': met})
        if row == 'slurm' and array_limit:
            most = math.ceil(peer['calls'] / array_limit) + 1
            sbatch = (mine.get('commands') or {}).get('sbatch') if ratio is not None else None
            found.append({'row': row, 'target': f'cluster sbatch calls <= {most}',
                          'ratio': sbatch, 'met': None if sbatch is None else sbatch <= most})
    return found


def table(rows: List[Dict], goals: List[Dict]) -> None:
    print(f"\n{'row':<20} {'tool':<42} {'calls':>6} {'wall s':>8}  commands")
    for row in rows:
        wall = ('n/a' if row['wall'] is None else f"{row['wall']:.3f}")
        what = row.get('note') or (f"FAILED: {row['error']}" if row['error'] else commands(row))
        print(f"{ROWS[row['row']]:<20} {row['tool']:<42} {row['calls']:>6} {wall:>8}  {what}")
    print(f"\n{'row':<20} {'target':<42} {'cluster/peer':>12} {'speed-up':>9}  met")
    for goal in goals:
        ratio = goal['ratio']
        shown = 'n/a' if ratio is None else (f'{ratio:.3f}' if isinstance(ratio, float)
                                             else str(ratio))
        faster = f'{1 / ratio:.1f}' if isinstance(ratio, float) and ratio > 0 else ''
        met = {None: 'n/a', True: 'yes', False: 'NO'}[goal['met']]
        print(f"{ROWS[goal['row']]:<20} {goal['target']:<42} {shown:>12} {faster:>9}  {met}")


def parse(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--n', type=int, help='calls of the Slurm and local rows (10,000)')
    parser.add_argument('--n-array', type=int, help='calls of the array row (300)')
    parser.add_argument('--chunksize', type=int,
                        help='chunksize of the local rows (default: N / 20, at least 1)')
    parser.add_argument('--small', action='store_true',
                        help='a few calls per row (40 and 4), to check the benchmark works')
    parser.add_argument('--repeat', type=int, default=7,
                        help='runs of each local row, in turn; the median is shown (7)')
    parser.add_argument('--array-repeat', type=int, default=1,
                        help='runs of the array pair, the side going first alternating; the '
                             'median is shown (1)')
    parser.add_argument('--only', choices=('slurm', 'array', 'local'),
                        help='only the Slurm rows (N calls and array), only the array row '
                             '(300 calls) or only the local row')
    parser.add_argument('--json', metavar='PATH', help="write the figures as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    args.n = args.n or (40 if args.small else 10_000)
    args.n_array = args.n_array or (4 if args.small else 300)
    args.chunksize = args.chunksize or max(1, args.n // 20)
    if args.small:
        args.repeat = min(args.repeat, 2)
    if min(args.n, args.n_array, args.chunksize, args.repeat, args.array_repeat) < 1:
        parser.error('--n, --n-array, --chunksize, --repeat and --array-repeat must be '
                     'positive')
    if args.json and args.json != '-':
        args.json = os.path.abspath(args.json)
    return args


def main(argv: List[str]) -> int:
    args = parse(argv)
    from slurm import make_shims
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # finally-blocks cancel our jobs
    base = tempfile.mkdtemp(prefix='bench_executor_')
    name = os.path.basename(base)              # unique job name of this run's peer jobs
    shims, log = os.path.join(base, 'shims'), os.path.join(base, 'calls.log')
    os.makedirs(shims)
    real = make_shims(shims, log)
    os.environ['PATH'] = shims + os.pathsep + os.environ['PATH']
    os.environ['PYTHONPATH'] = os.pathsep.join(
        [HERE, os.path.dirname(HERE)] + [p for p in [os.environ.get('PYTHONPATH')] if p])
    cwd = os.getcwd()
    os.chdir(base)                             # stray slurm-*.out files land in the temp dir
    limit = max_array_size() if args.only != 'local' else None
    print(f'benchmarks/executor.py: N={args.n}, array {args.n_array}, local chunksize '
          f'{args.chunksize}, {os.cpu_count()} cores, MaxArraySize {limit}, files in {base}')
    print('(other users of the same Slurm, e.g. parallel test runs, slow every row)', flush=True)
    try:
        rows = run_rows(args, base, log, name)
    finally:
        left = cancel_jobs(name, real) if limit else []
        os.chdir(cwd)
        shutil.rmtree(base, ignore_errors=True)   # ours: made by mkdtemp above
    goals = targets(rows, limit)
    table(rows, goals)
    if left:
        print(f'jobs of this run still listed after scancel: {left}', file=sys.stderr)
    if args.json:
        text = json.dumps({'n': args.n, 'n_array': args.n_array, 'chunksize': args.chunksize,
                           'max_array_size': limit, 'job_name': name, 'files': base,
                           'rows': rows, 'targets': goals}, indent=1)
        if args.json == '-':
            print(text)
        else:
            with open(args.json, 'w') as handle:
                handle.write(text + '\n')
    failed = [row for row in rows if row['error']]
    return 1 if failed or left else 0


def cancel_jobs(name: str, real: Dict[str, str]) -> List[str]:
    from _peers import cancel_named
    return cancel_named(name, real['scancel'], real['squeue'])


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

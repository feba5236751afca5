#!/usr/bin/env python
"""Peak memory of the driver while it fetches a big remote output (issue 11 item 5).

    .venv/bin/python benchmarks/remote_fetch.py                     # 50 and 200 MB
    .venv/bin/python benchmarks/remote_fetch.py --mb 200 --kind function

For each size a fresh driver process submits one remote job of each kind through the
test sshd (Slurm behind it) and waits for them; then, for each in turn, from its resident
size at that moment (the baseline), it fetches the output and reports its peak
(``ru_maxrss``) above it:

* stdout:   a job prints N MB; the fetch is the pull of its stdout file to local disk;
* function: a function job returns N MB of bytes; the fetch is ``get()`` (pull, then
  unpickle), so the value itself (N MB) is part of its peak.

``--driver KINDS MB --profile NAME`` (KINDS: ``stdout,function``) runs one driver with the profiles of
``$CLUSTER_CONFIG`` and prints its figures as JSON (the tests use it that way).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MB = 1_000_000
MiB = 1 << 20


def make_bytes(size: int) -> bytes:
    """The function job: ``size`` bytes."""
    return b'x' * size


def drive(kinds: list, megabytes: int, profile: str) -> list:
    """Submit one job of each kind, wait for them, then measure each fetch in turn here
    (``ru_maxrss`` only grows: a later fetch's figure is an upper bound)."""
    import psutil

    import cluster
    size = megabytes * MB
    jobs = [cluster.submit(f"head -c {size} /dev/zero | tr '\\0' x", profile=profile)
            if kind == 'stdout' else cluster.submit(make_bytes, (size,), profile=profile)
            for kind in kinds]
    cluster.wait(jobs)
    figures = []
    for kind, job in zip(kinds, jobs):
        baseline = psutil.Process().memory_info().rss
        started = time.perf_counter()
        error, fetched = None, 0
        try:
            if kind == 'stdout':
                job.store.pull(job.files, [job.outfile])
                fetched = os.path.getsize(job.store.local(job.files, job.outfile))
            else:
                fetched = len(job.get())
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the figure is the point
            error = f'{type(exc).__name__}: {exc}'[:500]
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        job.clean(delete_outputs=True)
        figures.append({'kind': kind, 'size': size, 'fetched': fetched,
                        'seconds': round(seconds, 2), 'baseline_mib': round(baseline / MiB, 1),
                        'above_baseline_mib': round((peak - baseline) / MiB, 1),
                        'error': error})
    return figures


def run_driver(kinds: list, megabytes: int, profile: str, env: dict) -> list:
    """One driver in a process of its own; its figures."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__), '--driver',
                             ','.join(kinds), str(megabytes), '--profile', profile], env=env,
                            capture_output=True, text=True, timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.startswith('[')]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f'driver failed ({result.returncode}): {result.stderr[-3000:]}')
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--mb', type=int, nargs='+', default=[50, 200])
    parser.add_argument('--kind', nargs='+', default=['stdout', 'function'],
                        choices=['stdout', 'function'])
    parser.add_argument('--driver', nargs=2, metavar=('KIND', 'MB'))
    parser.add_argument('--profile', default='bench')
    args = parser.parse_args()
    if args.driver:
        print(json.dumps(drive(args.driver[0].split(','), int(args.driver[1]), args.profile)))
        return
    from remote import _config
    workdir = tempfile.mkdtemp(prefix='cluster-bench-fetch-')
    env = dict(os.environ, CLUSTER_CONFIG=_config(workdir))
    print(f'{"kind":<9} {"MB":>5} {"seconds":>8} {"baseline MiB":>13} {"peak above MiB":>15}')
    for megabytes in args.mb:
        os.chdir(workdir)
        for figures in run_driver(args.kind, megabytes, args.profile, env):
            print(f'{figures["kind"]:<9} {megabytes:>5} {figures["seconds"]:>8} '
                  f'{figures["baseline_mib"]:>13} {figures["above_baseline_mib"]:>15}'
                  + (f'  FAILED: {figures["error"]}' if figures['error'] else ''))


if __name__ == '__main__':
    main()

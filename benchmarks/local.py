#!/usr/bin/env python
"""Local-mode benchmarks of issue 3 (item 6): one command, peers run in the same process tree.

    .venv/bin/python benchmarks/local.py            # every figure
    .venv/bin/python benchmarks/local.py a c        # some figures

(a) 1,000 tiny functions through JobQueue.add + get, against ProcessPoolExecutor(2),
    multiprocessing.Pool(2) and dask LocalCluster(n_workers=2, threads_per_worker=1).
    Pools are created and warmed up (one task per worker) outside the timer; their start-up
    times are printed apart. Best of 3 runs (dask: 1).
(b) a DAG of 500 tiny tasks in 50 chains of 10, against dask (futures chained by argument).
(c) 20 two-core sleep(0.2) and 40 one-core sleep(0.1) jobs, shuffled, on a 2-core queue:
    makespan / (core-seconds / cores).
(d) 200 function jobs through the Job API (files written, get() of each) against
    submitit's LocalExecutor on the same function.
(e) peak RSS of a fresh parent process holding 10,000 queued jobs (all waiting on a
    blocker job), measured in a child interpreter so the peers' memory does not count.

Needs ``dask[distributed]`` for the dask columns (they print 'n/a' without it).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cluster.jobqueue import JobQueue  # noqa: E402

TINY_JOBS = 1000
CHAINS, CHAIN_LENGTH = 50, 10
QUEUED_JOBS = 10_000


def tiny(x: int) -> int:
    """The unit of work of (a) and (b)."""
    return x + 1


def wait_for_fifo(path: str) -> str:
    """The blocker job of (e): returns once the parent writes to the FIFO."""
    with open(path) as fifo:
        return fifo.read()


def best_of(runs: int, timed: Callable[[], float]) -> float:
    return min(timed() for _ in range(runs))


def clock(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- (a)

def jobqueue_tiny(queue: JobQueue, n: int) -> None:
    ids = [queue.add(tiny, (i,)) for i in range(n)]
    assert [queue.get(i) for i in ids] == list(range(1, n + 1))


def executor_tiny(pool: concurrent.futures.Executor, n: int) -> None:
    futures = [pool.submit(tiny, i) for i in range(n)]
    assert [f.result() for f in futures] == list(range(1, n + 1))


def mp_pool_tiny(pool, n: int) -> None:
    results = [pool.apply_async(tiny, (i,)) for i in range(n)]
    assert [r.get() for r in results] == list(range(1, n + 1))


def dask_client():
    """A dask Client on LocalCluster(2 workers, 1 thread each), or None without dask."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        return None
    import logging
    logging.getLogger('distributed').setLevel(logging.ERROR)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                           processes=True)
    return Client(cluster)


def dask_tiny(client, n: int) -> None:
    futures = [client.submit(tiny, i, pure=False) for i in range(n)]
    assert client.gather(futures) == list(range(1, n + 1))


def figure_a(results: Dict[str, float], client) -> None:
    n = TINY_JOBS
    start = time.perf_counter()
    queue = JobQueue(2)
    queue.wait([queue.add(tiny, (0,)), queue.add(tiny, (1,))])
    startup = {'JobQueue': time.perf_counter() - start}
    times = {'JobQueue': best_of(3, lambda: clock(lambda: jobqueue_tiny(queue, n)))}
    queue.shutdown()

    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        list(pool.map(tiny, [0, 1]))
        startup['ProcessPoolExecutor'] = time.perf_counter() - start
        times['ProcessPoolExecutor'] = best_of(3, lambda: clock(lambda: executor_tiny(pool, n)))

    start = time.perf_counter()
    with multiprocessing.Pool(2) as pool:
        pool.map(tiny, [0, 1])
        startup['multiprocessing.Pool'] = time.perf_counter() - start
        times['multiprocessing.Pool'] = best_of(3, lambda: clock(lambda: mp_pool_tiny(pool, n)))

    if client is not None:
        client.gather([client.submit(tiny, i, pure=False) for i in range(2)])
        times['dask LocalCluster'] = clock(lambda: dask_tiny(client, n))

    print(f'\n(a) {n} tiny functions, submit all then get each (best of 3; dask 1 run)')
    print(f'    {"runner":24} {"wall s":>8} {"us/job":>8} {"JobQueue/runner":>16} {"startup s":>10}')
    for name, seconds in times.items():
        print(f'    {name:24} {seconds:8.3f} {seconds / n * 1e6:8.0f} '
              f'{times["JobQueue"] / seconds:16.2f} {startup.get(name, float("nan")):10.3f}')
    results['a_vs_ppe'] = times['JobQueue'] / times['ProcessPoolExecutor']
    if 'dask LocalCluster' in times:
        results['a_dask_speedup'] = times['dask LocalCluster'] / times['JobQueue']


# ----------------------------------------------------------------------------- (b)

def jobqueue_dag(queue: JobQueue) -> None:
    ends = []
    for _ in range(CHAINS):
        previous: Optional[int] = None
        for step in range(CHAIN_LENGTH):
            previous = queue.add(tiny, (step,), dependencies=previous)
        ends.append(previous)
    assert queue.wait(ends, timeout=120)
    assert all(queue.jobs[i].exitcode == 0 for i in ends)


def dask_dag(client) -> None:
    ends = []
    for _ in range(CHAINS):
        future = client.submit(tiny, 0, pure=False)
        for _ in range(CHAIN_LENGTH - 1):
            future = client.submit(tiny, future, pure=False)
        ends.append(future)
    assert client.gather(ends) == [CHAIN_LENGTH] * CHAINS


def figure_b(results: Dict[str, float], client) -> None:
    queue = JobQueue(2)
    queue.wait(queue.add(tiny, (0,)))
    times = {'JobQueue': best_of(3, lambda: clock(lambda: jobqueue_dag(queue)))}
    queue.shutdown()
    if client is not None:
        times['dask LocalCluster'] = clock(lambda: dask_dag(client))
    total = CHAINS * CHAIN_LENGTH
    print(f'\n(b) DAG of {total} tasks: {CHAINS} chains of {CHAIN_LENGTH} (best of 3; dask 1 run)')
    print(f'    {"runner":24} {"wall s":>8} {"us/task":>8} {"JobQueue/runner":>16}')
    for name, seconds in times.items():
        print(f'    {name:24} {seconds:8.3f} {seconds / total * 1e6:8.0f} '
              f'{times["JobQueue"] / seconds:16.2f}')
    results['b_seconds'] = times['JobQueue']
    if 'dask LocalCluster' in times:
        results['b_dask_speedup'] = times['dask LocalCluster'] / times['JobQueue']


# ----------------------------------------------------------------------------- (c)

def figure_c(results: Dict[str, float]) -> None:
    cores = 2
    jobs = [(0.2, 2)] * 20 + [(0.1, 1)] * 40
    random.Random(2026).shuffle(jobs)
    lower_bound = sum(seconds * need for seconds, need in jobs) / cores
    queue = JobQueue(cores)
    queue.wait(queue.add(tiny, (0,)))  # workers up before the clock starts
    start = time.time()
    ids = [queue.add(time.sleep, (seconds,), cores=need) for seconds, need in jobs]
    assert queue.wait(ids, timeout=60)
    makespan = max(queue.jobs[i].end for i in ids) - start
    queue.shutdown()
    ratio = makespan / lower_bound
    print(f'\n(c) 20 two-core sleep(0.2) + 40 one-core sleep(0.1), shuffled, on {cores} cores')
    print(f'    makespan {makespan:.3f} s, lower bound {lower_bound:.3f} s, ratio {ratio:.3f}')
    results['c_ratio'] = ratio


# ----------------------------------------------------------------------------- (d)

def bench_job_api(n: int = 200) -> Dict[str, float]:
    """Figure (d): ``n`` function jobs through the Job API (files written, ``get()`` of
    each) against the same function through submitit's LocalExecutor, in ms per job."""
    import cluster
    figures: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ['CLUSTER_CONFIG'] = os.path.join(tmp, 'cluster.ini')
        cluster.submit(tiny, (0,), qtype='local', path=tmp).get()  # start the workers

        def job_api() -> None:
            jobs = [cluster.submit(tiny, (i,), qtype='local', path=tmp) for i in range(n)]
            assert [job.get() for job in jobs] == [i + 1 for i in range(n)]
        figures['job_api_ms_per_job'] = 1000 * clock(job_api) / n
        try:
            import submitit
        except ImportError:
            print('(d) submitit is not installed: pip install submitit')
            return figures
        executor = submitit.LocalExecutor(folder=os.path.join(tmp, 'submitit'))
        executor.update_parameters(timeout_min=5)

        def with_submitit() -> None:
            jobs = [executor.submit(tiny, i) for i in range(n)]
            assert [job.result() for job in jobs] == [i + 1 for i in range(n)]
        figures['submitit_ms_per_job'] = 1000 * clock(with_submitit) / n
    return figures


def figure_d(results: Dict[str, float]) -> None:
    figures = bench_job_api()
    print('\n(d) 200 function jobs through the Job API (files written, get() of each)')
    for key, value in figures.items():
        print(f'    {key.replace("_ms_per_job", ""):10} {value:8.2f} ms per job')
    if figures.get('job_api_ms_per_job') and figures.get('submitit_ms_per_job'):
        results['d_speedup'] = figures['submitit_ms_per_job'] / figures['job_api_ms_per_job']


# ----------------------------------------------------------------------------- (e)

def queued_memory() -> None:
    """Child side of (e): print the peak RSS in MB with QUEUED_JOBS jobs queued, then after."""
    import psutil
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, 'release')
        os.mkfifo(fifo, 0o600)
        queue = JobQueue(2)
        blocker = queue.add(wait_for_fifo, (fifo,))
        ids = [queue.add(tiny, (i,), dependencies=blocker) for i in range(QUEUED_JOBS)]
        queue.update()
        queued = sum(queue.jobs[i].state.value == 'pending' for i in ids)
        rss_queued = psutil.Process().memory_info().rss / 2**20
        peak_queued = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        with open(fifo, 'w') as release:
            release.write('go')
        assert queue.get(blocker) == 'go'
        assert queue.wait(ids, timeout=300)
        drained = time.perf_counter() - start
        peak_all = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.shutdown()
    print(f'{queued} {rss_queued:.1f} {peak_queued:.1f} {peak_all:.1f} {drained:.3f}')


def figure_e(results: Dict[str, float]) -> None:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--queued-memory'],
                         check=True, capture_output=True, text=True).stdout.split()
    queued, rss_queued, peak_queued, peak_all, drained = out[-5:]
    print(f'\n(e) a fresh parent with {QUEUED_JOBS} jobs queued behind one blocker job')
    print(f'    jobs pending: {queued}; RSS then {float(rss_queued):.1f} MB; peak RSS then '
          f'{float(peak_queued):.1f} MB; peak after all ran {float(peak_all):.1f} MB; '
          f'draining the {QUEUED_JOBS} took {float(drained):.2f} s')
    results['e_peak_mb'] = max(float(peak_queued), float(peak_all))


# ----------------------------------------------------------------------------- main

TARGETS = [
    ('a', 'a_vs_ppe', 'JobQueue / ProcessPoolExecutor wall time', '<=', 1.5),
    ('a', 'a_dask_speedup', 'dask / JobQueue wall time', '>=', 10),
    ('c', 'c_ratio', 'makespan / lower bound', '<=', 1.05),
    ('d', 'd_speedup', 'submitit / Job API time per job', '>=', 20),
    ('e', 'e_peak_mb', 'peak RSS MB with 10,000 queued', '<=', 100),
]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('figures', nargs='*', metavar='FIGURE',
                        help='figures to run, a to e (default: all)')
    parser.add_argument('--queued-memory', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.queued_memory:  # figure (e)'s child interpreter
        queued_memory()
        return 0
    wanted = set(args.figures) or set('abcde')
    if not wanted <= set('abcde'):
        parser.error(f'unknown figures: {" ".join(sorted(wanted - set("abcde")))} (a to e)')
    print(f'benchmarks/local.py on {os.cpu_count()} cores, Python {sys.version.split()[0]}')
    results: Dict[str, float] = {}
    if 'e' in wanted:  # first, while this process is small (it runs in a child anyway)
        figure_e(results)
    client = dask_client() if wanted & {'a', 'b'} else None
    try:
        if 'a' in wanted:
            figure_a(results, client)
        if 'b' in wanted:
            figure_b(results, client)
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            cluster.close()
    if 'c' in wanted:
        figure_c(results)
    if 'd' in wanted:
        figure_d(results)
    print('\ntargets')
    for figure, key, label, op, target in TARGETS:
        if figure not in wanted:
            continue
        if key not in results:
            print(f'    ({figure}) {label:45} {"n/a":>8}  {op} {target:<5}  SKIPPED')
            continue
        value = results[key]
        ok = value <= target if op == '<=' else value >= target
        print(f'    ({figure}) {label:45} {value:8.2f}  {op} {target:<5}  '
              f'{"PASS" if ok else "MISS"}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

"""The rows of benchmarks/executor.py: each peer and each ``cluster.Executor`` slot.

A row's body gets an ``ExitStack`` (closed after the clock stops, on errors too) and the
inputs, and returns the results; ``measure`` times it to all results, start-up included,
and counts the Slurm commands run meanwhile through the PATH shims of benchmarks/slurm.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from typing import Callable, Dict, List, Optional

from _tiny import expected_sum, tiny
from slurm import count, read_log

Body = Callable[[ExitStack, List[int], Dict[str, float]], List[int]]
MEMORY = '1GB'           # the test Slurm's DefMemPerCPU (100 MB) is too small for a dask worker
WALLTIME = '00:10:00'


def measure(row: str, tool: str, side: str, n: int, body: Body, log: str) -> Dict[str, object]:
    """Run ``body`` on range(n): wall time to all results, results checked, commands counted."""
    xs = list(range(n))
    record: Dict[str, object] = {'row': row, 'tool': tool, 'side': side, 'calls': n,
                                 'wall': None, 'close': None, 'results': None, 'sum': None,
                                 'ok': False, 'error': None, 'commands': None}
    t0 = time.time()
    start = time.perf_counter()
    try:
        with ExitStack() as stack:
            results = body(stack, xs, record.setdefault('seconds', {}))
            record['wall'] = time.perf_counter() - start
            done = time.perf_counter()
        record['close'] = time.perf_counter() - done
        record['results'] = len(results)
        record['sum'] = sum(results)
        record['ok'] = len(results) == n and sum(results) == expected_sum(n)
        if not record['ok']:
            record['error'] = f'wrong results: {len(results)} results summing to {sum(results)}'
    except Exception as exc:   # a failing row is reported; the others still run
        record['error'] = f'{type(exc).__name__}: {exc}'
        traceback.print_exc()
    record['commands'] = count(read_log(log), t0, time.time() + 0.5)
    return record


def not_available(row: str, side_tool: str, n: int) -> Dict[str, object]:
    """The row of an Executor that does not exist yet: no figures at all."""
    return {'row': row, 'tool': side_tool, 'side': 'cluster', 'calls': n, 'wall': None,
            'close': None, 'results': None, 'sum': None, 'ok': None, 'commands': None,
            'error': None, 'note': 'cluster.Executor: not available yet'}


def dask_jobqueue_body(name: str, folder: str, partition: Optional[str]) -> Body:
    """SLURMCluster with 2 one-core workers (one job each), then ``client.map``."""
    def body(stack: ExitStack, xs: List[int], seconds: Dict[str, float]) -> List[int]:
        from dask.distributed import Client
        start = time.perf_counter()
        from dask_jobqueue import SLURMCluster
        slurm = stack.enter_context(SLURMCluster(
            queue=partition, cores=1, processes=1, memory=MEMORY, walltime=WALLTIME,
            job_name=name, interface='lo', python=sys.executable, log_directory=folder,
            local_directory=folder, scheduler_options={'dashboard_address': ':0'}))
        slurm.scale(jobs=2)
        client = stack.enter_context(Client(slurm))
        futures = client.map(tiny, xs)
        client.wait_for_workers(1)              # the calls are queued already: no delay
        seconds['first worker up'] = time.perf_counter() - start
        return client.gather(futures)
    return body


def submitit_body(name: str, folder: str, partition: Optional[str]) -> Body:
    """submitit's AutoExecutor on Slurm, one ``map_array``; unfinished tasks cancelled."""
    def body(stack: ExitStack, xs: List[int], _: Dict[str, float]) -> List[int]:
        import submitit
        executor = submitit.AutoExecutor(folder=folder, cluster='slurm')
        params = {'slurm_partition': partition} if partition else {}
        executor.update_parameters(timeout_min=10, cpus_per_task=1, slurm_mem='500M',
                                   slurm_job_name=name, **params)
        jobs = executor.map_array(tiny, xs)
        stack.callback(lambda: [job.cancel(check=False) for job in jobs if not job.done()])
        return [job.result() for job in jobs]
    return body


def process_pool_body(chunksize: int) -> Body:
    """``ProcessPoolExecutor(2).map`` with the given chunksize, pool start-up included."""
    def body(stack: ExitStack, xs: List[int], _: Dict[str, float]) -> List[int]:
        pool = stack.enter_context(ProcessPoolExecutor(2))
        return list(pool.map(tiny, xs, chunksize=chunksize))
    return body


def executor_body(factory: Callable[..., object], chunksize: Optional[int],
                  **options: object) -> Body:
    """``with cluster.Executor(**options) as ex: list(ex.map(tiny, xs, chunksize=...))``."""
    def body(stack: ExitStack, xs: List[int], _: Dict[str, float]) -> List[int]:
        executor = stack.enter_context(factory(**options))
        return list(executor.map(tiny, xs, chunksize=chunksize))
    return body


def cancel_named(name: str, scancel: str, squeue: str, deadline: float = 60.0) -> List[str]:
    """Cancel this run's jobs (by their unique name) and wait until Slurm lists none.

    Returns the ids still listed at the deadline (empty when all are gone)."""
    user = os.environ.get('USER') or subprocess.run(['id', '-un'], capture_output=True,
                                                    text=True).stdout.strip()
    subprocess.run([scancel, f'--user={user}', f'--name={name}'], capture_output=True)
    listed: List[str] = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        out = subprocess.run([squeue, '-h', f'--user={user}', f'--name={name}', '-o', '%i'],
                             capture_output=True, text=True)
        listed = out.stdout.split()
        if out.returncode == 0 and not listed:
            return []
        time.sleep(0.5)  # polling squeue until the cancelled jobs have left, with a deadline
    return listed

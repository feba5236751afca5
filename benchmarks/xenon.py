#!/usr/bin/env python
"""xenon_backend benchmark of issue 5 (item 8): one command, medians.

    bash scripts/setup_xenon.sh && bash tests/cluster/sshd_up.sh
    .venv/bin/python benchmarks/xenon.py                  # every figure
    .venv/bin/python benchmarks/xenon.py --repeat 5       # fewer rounds

(start)   JVM start to first answered RPC: Server().start() on a free port, mutual TLS
          (certificates already made), until getAdaptorNames answers; then stop().
(rpc)     round trip of a cheap RPC (getAdaptorNames) over the TLS channel.
(local)   submit-and-wait of /bin/true with the local adaptor (queue 'single').
(ssh)     the same with the ssh adaptor against the test sshd on 127.0.0.1, with the
          default queue.pollingDelay (1000 ms) and with the smallest allowed (100 ms).

Every figure is the median of its rounds; min and max are printed beside it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import xenon_backend as xb  # noqa: E402
from _env import STATE, read_env  # noqa: E402
from xenon_backend.server import Server  # noqa: E402

NO_HOST_CHECK = {'xenon.adaptors.schedulers.ssh.strictHostKeyChecking': 'false',
                 'xenon.adaptors.schedulers.ssh.loadKnownHosts': 'false'}


def timed(action: Callable[[], object], rounds: int) -> List[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def report(label: str, times: List[float], unit: str = 's') -> Dict[str, float]:
    scale = 1000.0 if unit == 'ms' else 1.0
    median = statistics.median(times) * scale
    print(f'{label:<60} median {median:8.3f} {unit}   (min {min(times) * scale:.3f}, '
          f'max {max(times) * scale:.3f}, n={len(times)})', flush=True)
    return {'median': median}


def bench_start(rounds: int) -> None:
    Server().start().stop()  # certificates made, page cache warm
    times = []
    for _ in range(rounds):
        server = Server()
        started = time.perf_counter()
        server.start()
        times.append(time.perf_counter() - started)
        server.stop()
    report('(start) JVM start to first RPC', times)


def bench_rpc(server: Server, rounds: int) -> None:
    for _ in range(20):
        server.ping()
    report('(rpc)   cheap RPC round trip (getAdaptorNames)', timed(server.ping, rounds), 'ms')


def submit_and_wait(scheduler: xb.Scheduler) -> None:
    job = scheduler.submit_batch_job(xb.JobDescription(executable='/bin/true'))
    status = scheduler.wait_until_done(job)
    if status.exit_code != 0:
        raise RuntimeError(f'/bin/true ended with {status}')


def bench_local(server: Server, rounds: int) -> None:
    with xb.Scheduler.create('local', server=server) as scheduler:
        submit_and_wait(scheduler)
        report('(local) submit + wait /bin/true, local adaptor',
               timed(lambda: submit_and_wait(scheduler), rounds))


def bench_ssh(server: Server, rounds: int) -> None:
    settings = read_env('sshd.env')
    if not settings:
        print(f'(ssh)   skipped: {STATE}/sshd.env is missing (run bash tests/cluster/sshd_up.sh)')
        return
    location = f'{settings["CLUSTER_TEST_SSH_HOST"]}:{settings["CLUSTER_TEST_SSH_PORT"]}'
    credential = xb.CertificateCredential(settings['CLUSTER_TEST_SSH_KEY'],
                                          username=settings['CLUSTER_TEST_SSH_USER'])
    for delay in (None, 100):
        properties = dict(NO_HOST_CHECK)
        if delay:
            properties['xenon.adaptors.schedulers.ssh.queue.pollingDelay'] = str(delay)
        # one scheduler per setting, reused: each closed ssh scheduler leaks a connection
        scheduler = xb.Scheduler.create('ssh', location, properties, credential, server=server,
                                        timeout=60)
        try:
            submit_and_wait(scheduler)
            label = f'(ssh)   submit + wait /bin/true, ssh, pollingDelay {delay or 1000} ms'
            report(label, timed(lambda: submit_and_wait(scheduler), rounds))
        finally:
            scheduler.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=10, help='rounds per figure (default 10)')
    args = parser.parse_args(argv)
    rounds = max(1, args.repeat)
    print(f'xenon-grpc benchmark, {rounds} rounds per figure (rpc: {rounds * 50})', flush=True)
    bench_start(rounds)
    with Server() as server:
        bench_rpc(server, rounds * 50)
        bench_local(server, rounds)
        bench_ssh(server, rounds)
    return 0


if __name__ == '__main__':
    sys.exit(main())

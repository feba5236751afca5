#!/usr/bin/env python
"""How often xenon-grpc 3.0.1 breaks an SFTP client, with the test sshd on 127.0.0.1.

    bash scripts/setup_xenon.sh && bash tests/cluster/sshd_up.sh
    .venv/bin/python benchmarks/xenon_races.py                 # both figures
    .venv/bin/python benchmarks/xenon_races.py --jobs 300      # more batch jobs per mode

(calls)   8 threads share one sftp filesystem, 25 rounds each of write/exists/read/
          delete: once through xenon_backend.FileSystem (calls serialised), once with
          the lock bypassed. Prints the threads that failed.
(output)  one fresh ssh scheduler per batch job; after the job, one call on the
          scheduler's own filesystem with a 15 s deadline. Counted per redirection:
          stdout and stderr to files, stdout only, none. A hung or closed client counts.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import uuid
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import xenon_backend as xb  # noqa: E402
from _env import STATE, read_env  # noqa: E402
from xenon_backend._handle import Handle  # noqa: E402
from xenon_backend.exceptions import XenonException  # noqa: E402
from xenon_backend.messages import JobDescription  # noqa: E402

DEADLINE = 15
POLLING = 'xenon.adaptors.schedulers.ssh.queue.pollingDelay'


class UnlockedFileSystem(xb.FileSystem):
    """A FileSystem whose calls may overlap (what xenon-grpc's own clients do)."""

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        return Handle._call(self, *args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Any:
        return Handle._stream(self, *args, **kwargs)


def endpoint() -> Dict[str, Any]:
    values = read_env('sshd.env')
    if values is None:
        raise SystemExit(f'{STATE}/sshd.env is missing: run bash tests/cluster/sshd_up.sh')
    user = values['CLUSTER_TEST_SSH_USER']
    return {'location': f"{values['CLUSTER_TEST_SSH_HOST']}:{values['CLUSTER_TEST_SSH_PORT']}",
            'credential': xb.CertificateCredential(values['CLUSTER_TEST_SSH_KEY'],
                                                   username=user)}


def properties(kind: str) -> Dict[str, str]:
    prefix = f'xenon.adaptors.{kind}.'
    return {prefix + 'strictHostKeyChecking': 'false', prefix + 'loadKnownHosts': 'false'}


def overlapping_calls(where: Dict[str, Any], cls: type) -> List[str]:
    opened = xb.FileSystem.create('sftp', where['location'], properties('filesystems.sftp'),
                                  where['credential'], timeout=DEADLINE)
    filesystem = cls(opened.id, opened.server, DEADLINE)
    base = opened.get_working_directory() / f'races-{uuid.uuid4().hex[:8]}'
    opened.create_directory(base)
    failed: List[str] = []

    def work(worker: int) -> None:
        try:
            for i in range(25):
                path = base / f'{worker}-{i}'
                filesystem.write_bytes(path, b'x')
                filesystem.exists(path)
                filesystem.read_bytes(path)
                filesystem.delete(path)
        except XenonException as exc:
            failed.append(f'thread {worker}: {exc.message[:70]}')

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        opened.delete(base, recursive=True)
        opened.close()
    except XenonException:
        pass  # the client is broken: the server forgets it at exit
    return failed


def output_forwarding(where: Dict[str, Any], redirect: Dict[str, str], jobs: int) -> int:
    store = xb.FileSystem.create('sftp', where['location'], properties('filesystems.sftp'),
                                 where['credential'], timeout=60)
    broken = 0
    for _ in range(jobs):
        scheduler = xb.Scheduler.create(
            'ssh', where['location'],
            dict(properties('schedulers.ssh'), **{POLLING: '100'}), where['credential'],
            timeout=DEADLINE)
        directory = store.get_working_directory() / f'races-{uuid.uuid4().hex[:8]}'
        store.create_directory(directory)
        try:
            job = scheduler.submit_batch_job(JobDescription(
                executable='/bin/sh', arguments=['-c', 'echo out; echo err >&2'],
                working_directory=str(directory), **redirect))
            scheduler.wait_until_done(job, DEADLINE * 1000)
            own = scheduler.get_file_system()
            own.exists(own.get_working_directory())
        except XenonException:
            broken += 1
        try:
            scheduler.close()
        except XenonException:
            pass
        store.delete(directory, recursive=True)
    store.close()
    return broken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--jobs', type=int, default=100, help='batch jobs per mode')
    args = parser.parse_args()
    where = endpoint()
    xb.init()
    try:
        for label, cls in (('serialised (xenon_backend.FileSystem)', xb.FileSystem),
                           ('overlapping (lock bypassed)', UnlockedFileSystem)):
            failed = overlapping_calls(where, cls)
            print(f'(calls)  {label:<40} {len(failed)} of 8 threads failed', flush=True)
            for line in failed[:3]:
                print(f'           {line}')
        modes = (('stdout and stderr', {'stdout': 'out.txt', 'stderr': 'err.txt'}),
                 ('stdout only', {'stdout': 'out.txt'}), ('none', {}))
        for label, redirect in modes:
            broken = output_forwarding(where, redirect, args.jobs)
            print(f'(output) redirect {label:<20} {broken} of {args.jobs} schedulers broken',
                  flush=True)
    finally:
        xb.shutdown()


if __name__ == '__main__':
    main()

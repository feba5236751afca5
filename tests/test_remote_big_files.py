"""Big remote files: a 200 MB stdout and a 200 MB function result come back through the
test sshd with the driver's memory bounded, and a big payload goes out in a stream.

The fetches are measured in a driver process of its own (benchmarks/remote_fetch.py),
from its resident size right before the fetch to its peak (``ru_maxrss``).
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

import cluster
from cluster.run import remote
from conftest import REMOTE_MARKS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'benchmarks'))
from remote_fetch import MB, MiB, run_driver  # noqa: E402

pytestmark = [*REMOTE_MARKS, pytest.mark.slurm]

#: what a fetch may add to the driver's memory, beyond the value it returns
BOUND_MIB = 100


@pytest.fixture(scope='module')
def env(remote_profiles):
    return remote_profiles


def test_a_200_mb_stdout_and_function_result_come_back_in_bounded_memory(
        env, private_config, in_tmp):
    figures = {f['kind']: f for f in run_driver(
        ['stdout', 'function'], 200, 'remote-slurm',
        dict(os.environ, CLUSTER_CONFIG=private_config))}
    for kind, item in figures.items():
        assert item['error'] is None, item
        assert item['fetched'] == 200 * MB, item
    assert figures['stdout']['above_baseline_mib'] < BOUND_MIB, figures['stdout']
    # the value itself (200 MB of bytes) is in memory once get() returns
    value_mib = 200 * MB / MiB
    assert figures['function']['above_baseline_mib'] < value_mib + BOUND_MIB, \
        figures['function']


def test_a_big_payload_is_pushed_in_a_stream_not_held_in_memory(env, in_tmp):
    import tracemalloc
    job = cluster.Job(len, (os.urandom(1 << 20) * 96,), profile='remote-slurm')
    job.write()                                   # 96 MiB of payload, more than one message
    local = job.files.pickle_in
    size = os.path.getsize(local)
    assert size > 96 * MiB
    tracemalloc.start()
    job.store.push(job.files, [job.target.pickle_in])      # once more, measured
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 16 * MiB, f'pushing {size / MiB:.0f} MiB held {peak / MiB:.0f} MiB'
    connection = remote.connect(remote.from_profile('remote-slurm'))
    code, out, _ = connection.run(['sha256sum', job.target.pickle_in])
    with open(local, 'rb') as handle:
        assert code == 0 and out.split()[0] == hashlib.file_digest(handle, 'sha256').hexdigest()
        head = handle.read(4096) if handle.seek(0) == 0 else b''
    assert job.store.read_head(job.target.pickle_in, limit=4096) == head
    assert job.submit().get() == 96 * MiB
    job.clean(delete_outputs=True)

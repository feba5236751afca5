"""cluster.Executor over SSH (the test sshd, the real Slurm or, for the Grid Engine user,
the real Grid Engine behind it, Xenon): each task's result file is fetched once."""
from __future__ import annotations

import pytest

import cluster
from cluster.run.remote.store import RemoteStore
from conftest import REMOTE_MARKS, remote_target

DEADLINE = 240

pytestmark = REMOTE_MARKS


def cube(x):
    return x ** 3


@pytest.mark.parametrize('qtype', [pytest.param('slurm', marks=pytest.mark.slurm),
                                   pytest.param('torque', marks=pytest.mark.slurm),
                                   pytest.param('sge', marks=pytest.mark.sge)])
def test_remote_results_are_fetched_once_per_task(qtype, remote_profiles, monkeypatch):
    fetched = []
    pull = RemoteStore.pull

    def counting(self, files, target_paths):
        target_paths = list(target_paths)
        fetched.extend(p for p in target_paths if p.endswith('.out') and '.task' in p)
        return pull(self, files, target_paths)

    monkeypatch.setattr(RemoteStore, 'pull', counting)
    where = remote_target(remote_profiles, f'remote-{qtype}')
    with cluster.Executor(cores=1, time='00:05:00', **where) as ex:
        assert isinstance(ex.store, RemoteStore)
        results = list(ex.map(cube, range(9), chunksize=3, timeout=DEADLINE))
        tasks = [t for job in ex.jobs for t in job.tasks]
        systems = {job.qtype for job in ex.jobs}
    assert results == [x ** 3 for x in range(9)]
    assert len(tasks) == 3 and systems == {qtype}
    assert sorted(fetched) == sorted(t.paths[1] for t in tasks), fetched

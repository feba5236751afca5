"""benchmarks/executor.py (issue 13) keeps working: a small run on the real Slurm and locally.

The peers (dask-jobqueue, submitit) come with ``scripts/install.sh --test``; a missing one
fails here, it is never skipped.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import cluster
from conftest import require, slurm_ready

ROOT = Path(__file__).resolve().parent.parent
BENCHMARK = ROOT / 'benchmarks' / 'executor.py'
DEADLINE = 480          # seconds for the whole run: ~10 s alone, but its jobs pend behind others'


def run_benchmark(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    """Run the benchmark as one command; on the deadline, SIGTERM (it cancels its jobs)."""
    process = subprocess.Popen([sys.executable, str(BENCHMARK), *options], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=90)
        pytest.fail(f'benchmark not done after {DEADLINE} s:\n{out}\n{err}')
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.slurm
def test_small_run_measures_every_peer_and_leaves_no_job(tmp_path):
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    for module in ('dask_jobqueue', 'distributed', 'submitit'):
        assert importlib.util.find_spec(module), \
            f'{module} missing: install the peers with scripts/install.sh --test'
    result = run_benchmark(tmp_path, '--small', '--json', 'figures.json')
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads((tmp_path / 'figures.json').read_text())
    rows = {(row['row'], row['side']): row for row in figures['rows']}
    assert set(rows) == {(row, side) for row in ('slurm', 'array', 'local')
                         for side in ('peer', 'cluster')}
    for row in ('slurm', 'array', 'local'):
        peer = rows[row, 'peer']
        n = figures['n_array'] if row == 'array' else figures['n']
        assert peer['error'] is None, peer
        assert peer['wall'] > 0 and peer['results'] == n == peer['calls'], peer
        assert peer['sum'] == sum(x * x for x in range(n)), peer
        mine = rows[row, 'cluster']
        if hasattr(cluster, 'Executor'):
            assert mine['ok'] and mine['wall'] > 0 and mine['sum'] == peer['sum'], mine
        else:
            assert mine['note'] == 'cluster.Executor: not available yet' and mine['wall'] is None
            assert 'cluster.Executor: not available yet' in result.stdout
    assert rows['slurm', 'peer']['commands']['sbatch'] >= 1     # the shims counted the peer
    assert rows['array', 'peer']['commands']['sbatch'] >= 1
    assert rows['local', 'peer']['commands']['sbatch'] == 0
    assert 'wall <= 0.5 x dask-jobqueue' in result.stdout       # the targets' table
    listed = subprocess.run(['squeue', '-h', '--name', figures['job_name'], '-o', '%i'],
                            capture_output=True, text=True, check=True).stdout.split()
    assert listed == [], f'jobs of the benchmark left on Slurm: {listed}'
    assert not os.path.exists(figures['files']), 'the run removes its temporary directory'

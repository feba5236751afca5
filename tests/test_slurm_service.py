"""Facts of the real test Slurm that issue 13 builds on: job arrays in sbatch/squeue/sacct,
and MaxArraySize. (The preemption, requeue and --signal facts that issue 14 builds on were
pinned here too, and recorded as tests/data/slurm/preempt_*, signal_lead.txt and
self_requeue_*: see commit 8b471cc. To keep the suite within 30 minutes they are now shown
only through the package, end to end, by tests/test_requeue.py.)

These drive Slurm's own commands (no package code): they pin what the scheduler does, so
a changed set-up (tests/cluster/slurm_up.sh) or Slurm version shows here first. With
RECORD_SLURM_SAMPLES=1 they write the raw outputs to tests/data/slurm/ (see README.txt).
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from conftest import require, slurm_ready
from support import until

pytestmark = pytest.mark.slurm
HERE = Path(__file__).resolve().parent
SAMPLES = HERE / 'data' / 'slurm'
CONF_SCRIPT = HERE / 'cluster' / 'slurm_conf.sh'
QUEUE_WAIT = 300  # our job may wait behind others' jobs on the 2 shared cores


# --- helpers ------------------------------------------------------------------------------
def sh(*argv: str, check: bool = True, timeout: float = 60,
       env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})
    if check and done.returncode:
        raise AssertionError(f'{argv} exited {done.returncode}: {done.stderr}')
    return done


def record(name: str, text: str) -> None:
    """Keep a raw output as a sample for parser tests (only when asked to)."""
    if os.environ.get('RECORD_SLURM_SAMPLES'):
        SAMPLES.mkdir(parents=True, exist_ok=True)
        (SAMPLES / name).write_text(text)


def lines(path: Path) -> List[str]:
    return path.read_text().split() if path.exists() else []


def show_job(job_id: str) -> Dict[str, str]:
    """``scontrol show job -o`` of one job as a dict ({} once Slurm forgot it)."""
    done = sh('scontrol', 'show', 'job', '-o', job_id, check=False)
    return dict(re.findall(r'(\w+)=(\S*)', done.stdout.splitlines()[0])) if done.stdout else {}


def queued(job_ids: str, fmt: str = '%i|%P|%T|%r', *flags: str) -> str:
    return sh('squeue', '-h', *flags, '-j', job_ids, '-o', fmt, check=False).stdout


def sacct(job_id: str, *flags: str, fields: str = 'JobID,State,ExitCode,Partition') -> List[str]:
    return sh('sacct', '-n', '-X', '-P', *flags, '-j', job_id, '-o', fields).stdout.splitlines()


def final_sacct(job_id: str, *flags: str, fields: str = 'JobID,State,ExitCode,Partition',
                timeout: float = 60) -> List[str]:
    """sacct rows once the job's last row is final (slurmdbd lags the end a little)."""
    def settled():
        rows = sacct(job_id, *flags, fields=fields)
        state = fields.split(',').index('State')
        return rows if rows and rows[-1].split('|')[state] not in (
            'PENDING', 'RUNNING') else None
    return until(settled, timeout, f'final accounting of {job_id}')


def sbatch(jobs: List[str], *args: str) -> str:
    out = sh('sbatch', '--parsable', *args).stdout.strip()
    assert re.fullmatch(r'\d+', out), f'--parsable printed {out!r}'
    jobs.append(out)
    return out


def script(path: Path, body: str) -> str:
    path.write_text('#!/bin/bash\n' + body)
    return str(path)


@pytest.fixture
def jobs():
    """Ids this test submitted; whatever is left of them is cancelled at the end."""
    submitted: List[str] = []
    yield submitted
    if submitted:
        sh('scancel', *submitted, check=False)


@pytest.fixture(autouse=True)
def _service(tmp_path, monkeypatch):
    require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    parts = sh('sinfo', '-h', '-o', '%R').stdout.split()
    require('partition high on the test Slurm', 'high' in parts, 'bash tests/cluster/slurm_up.sh')
    monkeypatch.chdir(tmp_path)


# --- arrays -------------------------------------------------------------------------------
ARRAY_FORMAT = '%i|%F|%K|%T|%r'


def test_array_forms_throttle_and_cancelled_indices(jobs, tmp_path):
    body = (f'touch {tmp_path}/ran.$SLURM_ARRAY_TASK_ID\n'
            '[ "$SLURM_ARRAY_TASK_ID" = 0 ] && n=600 || n=15\n'
            'for i in $(seq $n); do sleep 0.1; done\n')
    array = sbatch(jobs, '--array=0-9%2', '-o', str(tmp_path / '%A_%a.out'),
                   script(tmp_path / 'task.sh', body))
    plain_job = sbatch(jobs, '--hold', '--wrap', 'true')  # a job of no array, same listing
    sh('scancel', f'{array}_4')  # pending: it leaves no trace at all
    assert f'{array}_4|' not in queued(array, ARRAY_FORMAT, '-r')
    gone = sh('scontrol', 'show', 'job', f'{array}_4', check=False)
    record('array_scontrol_cancelled_pending.txt', gone.stdout + gone.stderr)
    assert gone.returncode == 1 and f'Job {array}_4 not found' in gone.stdout + gone.stderr
    samples: Dict[str, str] = {}
    most = 0
    def probe():
        nonlocal most
        plain = sh('squeue', '-h', '-o', ARRAY_FORMAT).stdout
        expanded = sh('squeue', '-h', '-r', '-o', ARRAY_FORMAT).stdout
        mine = [line.split('|') for line in expanded.splitlines() if line.split('|')[1] == array]
        running = [f[2] for f in mine if f[3] == 'RUNNING']
        most = max(most, len(running))
        assert len(running) <= 2, expanded  # the %2 throttle
        # both listings must show task 0 running: it may start between the two calls
        if '0' in running and f'\n{array}_0|' in f'\n{plain}' and 'plain' not in samples:
            def listed():
                rows = sacct(array, fields='JobID,JobIDRaw,State,ExitCode')
                return rows if f'{array}_0|' in '\n'.join(rows) else None
            rows = until(listed, 30, f'{array}_0 in sacct')  # slurmdbd lags the start
            samples.update(plain=plain, expanded=expanded, sacct='\n'.join(rows) + '\n')
            sh('scancel', plain_job)
            sh('scancel', f'{array}_0')  # running: cancelled, the others go on
        return not mine
    until(probe, QUEUE_WAIT, f'array {array} to finish', every=0.1)
    record('array_squeue.txt', samples['plain'])
    record('array_squeue_r.txt', samples['expanded'])
    record('array_sacct_running.txt', samples['sacct'])
    assert re.search(rf'^{plain_job}\|{plain_job}\|N/A\|PENDING\|JobHeldUser$', samples['plain'],
                     re.M), samples['plain']  # %F is the job's own id, %K N/A
    assert re.search(rf'^{array}_0\|\d+\|RUNNING\|', samples['sacct'], re.M), samples['sacct']
    assert re.search(rf'^{array}_\[[-,\d]+%2\]\|{array}\|PENDING\|', samples['sacct'], re.M)
    # pending: one line, the cancelled index a hole in the list, e.g. 123_[2-3,5-9%2]
    pend = re.search(rf'^{array}_\[([-,\d]+)%2\]\|{array}\|\1%2\|PENDING\|\w+$',
                     samples['plain'], re.M)
    assert pend and pend.group(1).endswith(',5-9'), samples['plain']
    assert re.search(rf'^{array}_0\|{array}\|0\|RUNNING\|None$', samples['plain'], re.M)
    assert '[' not in samples['expanded']  # -r: one line per task, pending ones too
    assert 1 <= most <= 2
    def settled():
        rows = sacct(array, fields='JobID,JobIDRaw,State,ExitCode')
        done = len(rows) == 9 and not any(r.split('|')[2] in ('PENDING', 'RUNNING')
                                          for r in rows)
        return rows if done else None
    rows = until(settled, 60, f'every task of {array} in sacct')
    record('array_sacct.txt', '\n'.join(rows) + '\n')
    states = {r.split('|')[0]: r.split('|')[2:] for r in rows}
    # cancelled while running: the job row's ExitCode stays 0:0 (the state says it all)
    assert states.pop(f'{array}_0') == ['CANCELLED by 0', '0:0'], rows
    assert states == {f'{array}_{i}': ['COMPLETED', '0:0'] for i in (1, 2, 3, 5, 6, 7, 8, 9)}
    assert sorted(p.name for p in tmp_path.glob('ran.*')) == [
        f'ran.{i}' for i in (0, 1, 2, 3, 5, 6, 7, 8, 9)]


def test_cancelled_pending_array_is_one_sacct_row_without_index(jobs):
    array = sbatch(jobs, '--hold', '--array=0-5', '--wrap', 'true')
    sh('scancel', array)
    rows = final_sacct(array, fields='JobID,JobIDRaw,State,ExitCode')
    record('array_sacct_cancelled_pending.txt', '\n'.join(rows) + '\n')
    assert rows == [f'{array}|{array}|CANCELLED by 0|0:0'], rows


# --- MaxArraySize -------------------------------------------------------------------------
def max_array_size() -> str:
    return sh('bash', str(CONF_SCRIPT), 'get', 'MaxArraySize').stdout.strip()


def under_limit_50(tmp_path: Path, **env: str) -> str:
    """What sbatch says of --array=0-60 and 0-49 while slurm_conf.sh holds MaxArraySize=50."""
    inner = '''exec > {d}/inner.txt 2>&1
scontrol show config | grep MaxArraySize
echo "--- 0-60"; sbatch --hold --parsable --array=0-60 --wrap true; echo "rc=$?"
echo "--- 0-49"; sbatch --hold --parsable --array=0-49 --wrap true; echo "rc=$?"
'''.format(d=tmp_path)
    sh('bash', str(CONF_SCRIPT), 'with', 'MaxArraySize=50', '--', 'bash', '-c', inner,
       timeout=150, env=env)
    return (tmp_path / 'inner.txt').read_text()


@pytest.mark.alone
def test_low_max_array_size_refuses_index_over_limit_and_is_put_back(jobs, tmp_path):
    assert max_array_size() == '1001'
    t0 = time.monotonic()
    text = under_limit_50(tmp_path)
    took = time.monotonic() - t0
    jobs.extend(re.findall(r'^(\d+)$', text, re.M))
    record('max_array_size_50.txt', text)
    assert re.match(r'MaxArraySize +?= 50\n', text), text
    assert ('--- 0-60\nsbatch: error: Batch job submission failed: Invalid job array '
            'specification\nrc=1\n') in text
    assert re.search(r'--- 0-49\n\d+\nrc=0\n', text), text
    assert max_array_size() == '1001'
    over = sbatch(jobs, '--hold', '--array=0-60', '--wrap', 'true')  # back to the default
    assert show_job(over)['ArrayTaskId'] == '0-60'
    record('max_array_size_switch.txt', f'set 50, two sbatch, set 1001: {took:.1f} s\n')
    assert took < 60


@pytest.mark.alone
def test_reconfigure_alone_leaves_the_max_array_size_slurmctld_started_with(jobs, tmp_path):
    """Why slurm_conf.sh restarts slurmctld: reconfigured, it reports 50 but checks 1001."""
    text = under_limit_50(tmp_path, SLURM_CONF_RESTART='0')
    jobs.extend(re.findall(r'^(\d+)$', text, re.M))
    record('max_array_size_50_reconfigure_only.txt', text)
    assert re.match(r'MaxArraySize +?= 50\n', text), text
    assert re.search(r'--- 0-60\n\d+\nrc=0\n--- 0-49\n\d+\nrc=0\n', text), text
    assert max_array_size() == '1001'

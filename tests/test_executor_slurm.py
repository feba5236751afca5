"""cluster.Executor against faults and limits of the real Slurm: one array task killed
while it runs, and MaxArraySize set low (tests/cluster/slurm_conf.sh)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cluster
from cluster import JobError
from conftest import _require_slurm
from array_work import interval, nap, square
from support import most_at_once, until

HERE = Path(__file__).resolve().parent
CONF_SCRIPT = HERE / 'cluster' / 'slurm_conf.sh'
DEADLINE = 240

pytestmark = pytest.mark.slurm


def test_a_task_killed_mid_array_fails_only_its_calls(in_tmp):
    _require_slurm('slurm')
    with cluster.Executor(qtype='slurm', cores=1, time='00:03:00', throttle=4) as ex:
        # 8 calls, 4 slots, one task per slot: 2 calls per task, task 1 holds nap(150), nap(0)
        calls = [(square, 0), (square, 1), (nap, 150), (nap, 0),
                 (square, 4), (square, 5), (square, 6), (square, 8)]
        futures = [ex.submit(fn, arg) for fn, arg in calls]
        killed = futures[2].job
        assert futures[3].job is killed and futures[1].job is not killed
        assert len({f.job.id.split('_')[0] for f in futures}) == 1  # one array
        try:
            until(futures[2].running, DEADLINE, f'task {killed.id} running')
            done = subprocess.run(['scancel', killed.id], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        finally:
            if not futures[2].done():
                ex.system.cancel([killed.id])
        for future in futures[2:4]:
            with pytest.raises(JobError, match=rf'{killed.id}\) ended cancelled'):
                future.result(DEADLINE)
        kept = [f.result(DEADLINE) for i, f in enumerate(futures) if i not in (2, 3)]
        assert kept == [0, 1, 16, 25, 36, 64]


SCRIPT = '''\
import json, sys
import cluster


def add_one(x):
    return x + 1


with cluster.Executor(qtype='slurm', cores=1, time='00:05:00') as ex:
    results = list(ex.map(add_one, range({calls}), chunksize=1, timeout={deadline}))
    arrays = [[job.id, [task.index for task in job.tasks]] for job in ex.jobs]
    limit = ex.system.array_limit()
print(json.dumps({{'results': results, 'arrays': arrays, 'limit': limit}}))
'''


def partition_cpus():
    """TotalCPUs of the default partition, as scontrol shows it."""
    out = subprocess.run(['scontrol', 'show', 'partition', '-o'], capture_output=True,
                         text=True, check=True).stdout
    line = next(row for row in out.splitlines() if 'Default=YES' in row)
    return int(line.split('TotalCPUs=')[1].split()[0])


def test_chunksize_none_makes_one_task_per_cpu_of_the_partition(in_tmp):
    _require_slurm('slurm')
    cpus = partition_cpus()
    with cluster.Executor(qtype='slurm', cores=1, time='00:03:00') as ex:
        assert list(ex.map(square, range(5 * cpus), timeout=DEADLINE)) == \
            [x * x for x in range(5 * cpus)]
        assert [len(job.tasks) for job in ex.jobs] == [cpus]  # one array, a task per CPU
    with cluster.Executor(qtype='slurm', cores=cpus, time='00:03:00') as ex:
        assert ex.chunksize_for(7) == 7  # a task takes all CPUs: one task


@pytest.mark.alone
def test_arrays_split_at_a_low_max_array_size_each_from_index_0(in_tmp):
    """52 tasks under MaxArraySize=50: two sbatch calls, arrays 0-49 and 0-1."""
    _require_slurm('slurm')
    calls = 52
    (in_tmp / 'run_map.py').write_text(SCRIPT.format(calls=calls, deadline=DEADLINE))
    shims = in_tmp / 'bin'
    shims.mkdir()
    real = subprocess.run(['bash', '-c', 'command -v sbatch'], capture_output=True,
                          text=True).stdout.strip()
    log = in_tmp / 'sbatch.log'
    (shims / 'sbatch').write_text(textwrap.dedent(f'''\
        #!/bin/sh
        echo "$*" >> {log}
        exec {real} "$@"
        '''))
    (shims / 'sbatch').chmod(0o755)
    env = dict(os.environ, PATH=f'{shims}:{os.environ["PATH"]}')
    done = subprocess.run(['bash', str(CONF_SCRIPT), 'with', 'MaxArraySize=50', '--',
                           sys.executable, 'run_map.py'], capture_output=True, text=True,
                          env=env, timeout=DEADLINE + 120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out['limit'] == 50
    assert out['results'] == [x + 1 for x in range(calls)]
    assert [indices for _, indices in out['arrays']] == [list(range(50)), [0, 1]]
    submitted = log.read_text().splitlines()
    assert len(submitted) == 2, submitted
    assert ['--array=0-49' in line for line in submitted] == [True, False]
    assert '--array=0-1' in submitted[1]
    limit = subprocess.run(['bash', str(CONF_SCRIPT), 'get', 'MaxArraySize'],
                           capture_output=True, text=True).stdout.strip()
    assert limit != '50'  # put back


def test_throttle_caps_the_tasks_of_all_arrays_of_an_executor(in_tmp):
    """throttle=1 over two arrays: the second waits for the first (afterany), so never
    two tasks at once, though the node has two cores."""
    _require_slurm('slurm')
    with cluster.Executor(qtype='slurm', cores=1, time='00:03:00', throttle=1) as ex:
        first = ex.map(interval, [1.5, 1.5], chunksize=1, timeout=DEADLINE)
        second = ex.map(interval, [1.5, 1.5], chunksize=1, timeout=DEADLINE)
        assert len(ex.jobs) == 2
        a, b = (job.id for job in ex.jobs)
        shown = subprocess.run(['squeue', '-h', '-r', '-j', b, '-o', '%E'],
                               capture_output=True, text=True).stdout
        assert f'afterany:{a}' in shown or not shown.strip(), shown  # or b ran already
        intervals = list(first) + list(second)
    assert most_at_once(intervals) == 1, intervals
    assert min(s for s, _ in intervals[2:]) >= max(e for _, e in intervals[:2])


def cluster_wait(job_id, terminal):
    """``cluster wait --qtype slurm ID``: (exit code, what it wrote to the terminal or to
    stdout, what it wrote to stderr)."""
    argv = [sys.executable, '-m', 'cluster.job.cli', 'wait', '--qtype', 'slurm',
            '--timeout', str(DEADLINE), job_id]
    if not terminal:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=DEADLINE + 30)
        return done.returncode, done.stdout, done.stderr
    import fcntl
    import pty
    import struct
    import termios
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 120, 0, 0))  # 120 wide
    proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=DEADLINE + 30), b''.join(chunks).decode(errors='replace'), ''


def test_cluster_wait_shows_a_bar_on_a_terminal_only(in_tmp):
    _require_slurm('slurm')
    shown = cluster.Job('sleep 1', qtype='slurm', cores=1, time='00:02:00').submit()
    code, screen, _ = cluster_wait(str(shown.id), terminal=True)
    assert code == 0, screen
    assert 'done=1, failed=0, running=0' in screen and '1/1' in screen, screen
    assert f'{shown.id} completed exit=0' in screen
    plain = cluster.Job('sleep 1', qtype='slurm', cores=1, time='00:02:00').submit()
    code, out, err = cluster_wait(str(plain.id), terminal=False)
    assert code == 0 and out.strip() == f'{plain.id} completed exit=0', (out, err)
    assert 'done=' not in err and '\r' not in err, err

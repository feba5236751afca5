"""``cluster jobs``, ``get``, ``resubmit`` and ``cancel`` (issue 14), run as the installed
command against the real Slurm and a remote profile, from processes that did not submit."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import cluster
from cluster.job import records

pytestmark = pytest.mark.slurm

SUBMIT = textwrap.dedent('''
    import sys, cluster

    def value(x):
        return {'x': x, 'squares': [x * x]}

    def fails():
        raise KeyError('missing thing')

    kw = eval(sys.argv[1])
    jobs = [cluster.Job(value, args=[3], name='val', **kw).submit(),
            cluster.Job(fails, name='raises', **kw).submit(),
            cluster.Job('echo to-out; echo to-err >&2; exit 4', name='cmd', **kw).submit()]
    print(' '.join(j.id for j in jobs))
''')


def cluster_cmd(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), 'cluster'), *argv],
                          capture_output=True, text=True, timeout=timeout)


def _submitted(kw: dict) -> list:
    done = subprocess.run([sys.executable, '-c', SUBMIT, repr(kw)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.fixture(params=['slurm', pytest.param('remote-slurm', marks=pytest.mark.remote),
                        pytest.param('remote-sge', marks=[pytest.mark.sge, pytest.mark.remote])])
def where(request, in_tmp):
    from conftest import _require_slurm, remote_target
    if request.param != 'remote-sge':
        _require_slurm('slurm')
    if request.param == 'slurm':
        return {'qtype': 'slurm'}
    return remote_target(request.getfixturevalue('remote_profiles'), request.param)


def system_of(where: dict) -> str:
    """The batch system the jobs of ``where`` run on (remote-sge's profile detects sge)."""
    return 'sge' if where.get('profile') == 'remote-sge' else 'slurm'


@pytest.mark.waits
def test_get_prints_the_value_or_output_and_exits_with_the_code(where):
    value, raises, cmd = _submitted(where)
    got = cluster_cmd('get', value, '--timeout', '300')
    assert (got.returncode, got.stdout) == (0, "{'x': 3, 'squares': [9]}\n"), got.stderr
    got = cluster_cmd('get', raises, '--timeout', '300')
    assert got.returncode == 1 and got.stdout == ''
    assert 'Traceback' in got.stderr and "KeyError: 'missing thing'" in got.stderr
    assert 'in fails' in got.stderr                     # the remote frames
    got = cluster_cmd('get', cmd, '--timeout', '300')
    assert (got.returncode, got.stdout) == (4, 'to-out\n')
    assert got.stderr.startswith('to-err\n') and f'job {cmd} ended failed' in got.stderr
    listed = cluster_cmd('jobs')
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ['id', 'name', 'system', 'state', 'exit', 'age']
    mine = {row.split()[0]: row.split() for row in rows if row.split()[0] in (value, cmd)}
    assert mine[value][1:5] == ['val', mine[value][2], 'completed', '0']
    assert mine[cmd][1] == 'cmd' and mine[cmd][3:5] == ['failed', '4']
    assert mine[cmd][2].startswith(system_of(where))
    assert mine[value][2] == mine[cmd][2]
    failed = cluster_cmd('jobs', '--state', 'failed').stdout
    assert cmd in failed and value not in failed.split()


@pytest.mark.waits
def test_resubmit_runs_the_job_again_and_keeps_the_old_outputs(where):
    value, _, cmd = _submitted(where)
    old = cluster.attach(cmd)
    assert old.get(timeout=300)[0] == 4
    old_value = cluster.attach(value)
    assert old_value.get(timeout=300) == {'x': 3, 'squares': [9]}
    outputs = {p: open(p, "rb").read() for p in (old.files.outfile, old_value.files.pickle_out)
               if os.path.exists(p)}
    done = cluster_cmd('resubmit', cmd, value)
    assert done.returncode == 0, done.stderr
    new_cmd, new_value = done.stdout.split()
    assert {new_cmd, new_value}.isdisjoint({cmd, value})
    again = cluster.attach(new_cmd)
    assert again.get(timeout=300) == (4, 'to-out\n', 'to-err\n')
    assert again.name == 'cmd_1' and again.files.outfile != old.files.outfile
    assert cluster.attach(new_value).get(timeout=300) == {'x': 3, 'squares': [9]}
    for path, text in outputs.items():
        assert open(path, "rb").read() == text
    assert cluster.attach(cmd).get() == (4, 'to-out\n', 'to-err\n')
    [before] = records.find(cmd)
    [after] = records.find(new_cmd)
    assert after['links']['resubmit_of'] == before['key']
    assert before['links']['resubmitted_as'] == [after['key']]


def test_resubmit_never_reuses_a_given_outfile(in_tmp):
    from conftest import _require_slurm
    _require_slurm('slurm')
    job = cluster.Job('echo first', name='own', qtype='slurm', outfile=str(in_tmp / 'mine.txt'))
    job.submit().wait(300)
    done = cluster_cmd('resubmit', job.id)
    assert done.returncode == 0, done.stderr
    again = cluster.attach(done.stdout.strip())
    assert again.get(timeout=300)[1] == 'first\n'
    assert (in_tmp / 'mine.txt').read_text() == 'first\n'
    assert again.outfile != job.outfile


def test_cancel_by_id_from_another_process(in_tmp):
    from conftest import _require_slurm
    _require_slurm('slurm')
    job = cluster.Job('sleep 300', name='long', qtype='slurm').submit()
    done = cluster_cmd('cancel', job.id)
    assert (done.returncode, done.stdout) == (0, f'{job.id} cancelled\n'), done.stderr
    assert job.wait(timeout=120) is False
    assert job.info.state is cluster.batch.State.CANCELLED


def test_an_unknown_id_is_a_clear_error(in_tmp):
    done = cluster_cmd('get', '424242424')
    assert done.returncode == 2
    assert 'no record of a job 424242424 in ' in done.stderr

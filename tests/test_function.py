"""Function jobs end to end: __main__ scripts, payload safety, bad input at the Job API."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

import cluster
from cluster import JobError, SubmissionError
from cluster.batch import State

MAIN_SCRIPT = textwrap.dedent('''
    import sys
    import cluster

    FACTOR = 3

    class Box:
        def __init__(self, value):
            self.value = value

    def triple(box):
        return Box(box.value * FACTOR)

    if __name__ == '__main__':
        job = cluster.submit(triple, (Box(14),), qtype=sys.argv[1])
        print(type(job.get()).__name__, job.get().value)
''')


@pytest.mark.parametrize('qtype', ['local', pytest.param('slurm', marks=pytest.mark.slurm)])
def test_function_defined_in_a_main_script(qtype, tmp_path):
    if qtype == 'slurm':
        from conftest import require, slurm_ready
        require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    (tmp_path / 'pipeline_main.py').write_text(MAIN_SCRIPT)
    result = subprocess.run([sys.executable, 'pipeline_main.py', qtype], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['Box', '42']


USES_A_MODULE = textwrap.dedent('''
    import sys
    import threading
    import cluster
    import mylib

    def scaled(value):
        return mylib.scale(value), cluster.__name__

    if __name__ == '__main__':
        assert isinstance(mylib.LOCK, type(threading.Lock()))
        print(*cluster.submit(scaled, (14,), qtype=sys.argv[1]).get())
''')


@pytest.mark.parametrize('qtype', ['local', pytest.param('slurm', marks=pytest.mark.slurm)])
def test_a_main_function_using_modules_outside_site_packages(qtype, tmp_path):
    """A __main__ function that uses the user's own module (and ``cluster``, which an
    editable install keeps outside site-packages) is pickled with those modules by name:
    dill alone would pickle their whole namespace, and fail on the lock in it."""
    if qtype == 'slurm':
        from conftest import require, slurm_ready
        require('Slurm', slurm_ready(), 'bash tests/cluster/slurm_up.sh')
    (tmp_path / 'mylib.py').write_text('import threading\nLOCK = threading.Lock()\n'
                                       'def scale(value):\n    return 3 * value\n')
    (tmp_path / 'uses_module.py').write_text(USES_A_MODULE)
    result = subprocess.run([sys.executable, 'uses_module.py', qtype], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['42', 'cluster']


def test_payload_and_result_are_private(in_tmp):
    job = cluster.submit(sum, ([1, 2],), qtype='local')
    assert job.get() == 3
    for path in (job.files.pickle_in, job.files.pickle_out, job.files.function_py):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_a_result_others_could_have_written_is_refused(in_tmp):
    job = cluster.submit(sum, ([1, 2],), qtype='local')
    job.wait()
    os.chmod(job.files.pickle_out, 0o666)
    with pytest.raises(JobError, match='not writable by group or others'):
        job.get()


def test_unpicklable_return_value_fails_that_job_alone(in_tmp):
    bad = cluster.submit(lambda: (n for n in range(3)), qtype='local')
    good = cluster.submit(lambda: 'fine', qtype='local')
    with pytest.raises(TypeError, match='could not be pickled'):
        bad.get()
    assert bad.info.state == State.FAILED
    assert good.get() == 'fine'


def test_dependency_on_an_unknown_id_is_a_clear_error(in_tmp):
    job = cluster.submit('true', qtype='local', depends=['99999'])
    with pytest.raises(JobError, match='99999'):  # submission runs on: its id raises
        job.id
    with pytest.raises(JobError, match='99999'):
        job.get()


def test_more_cores_than_the_machine_is_refused(in_tmp):
    job = cluster.submit('true', qtype='local', cores=100000)
    with pytest.raises(SubmissionError, match="100000 cores"):  # local mode refuses it
        job.wait()
    assert 'refused' in repr(job)

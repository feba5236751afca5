"""cluster.script: the naming convention, unique reservations, Script."""
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from cluster.run.errors import OptionError
from cluster.script import JobFiles, Script, reserve


def test_naming_convention():
    slurm = JobFiles('/w', 'job', 'cluster', 'slurm')
    assert slurm.submission == '/w/job.cluster.sbatch'
    assert slurm.exec_script == '/w/job.cluster.script'
    assert (slurm.outfile, slurm.errfile) == ('/w/job.cluster.out', '/w/job.cluster.err')
    assert slurm.function_py == '/w/job_func.cluster.py'
    assert slurm.pickle_in == '/w/job_func.cluster.py.pickle.in'
    assert slurm.pickle_out == '/w/job_func.cluster.py.pickle.out'
    assert JobFiles('/w', 'job', 'x', 'torque').submission == '/w/job.x.qsub'
    assert JobFiles('/w', 'job', 'x', 'torque').exec_script is None
    assert JobFiles('/w', 'job', 'x', 'local').submission == '/w/job.x'


def test_reserve_never_shares_files(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        reserved = list(pool.map(lambda _: reserve(str(tmp_path), 'same'), range(40)))
    paths = [p for files in reserved for p in files.all()]
    assert len(paths) == len(set(paths))
    assert {f.name for f in reserved} == {'same'} | {f'same_{n}' for n in range(1, 40)}
    mode = stat.S_IMODE(os.stat(reserved[0].submission).st_mode)
    assert mode == 0o600


def test_reserve_skips_names_whose_outputs_exist(tmp_path):
    (tmp_path / 'old.cluster.out').write_text('from an earlier run')
    assert reserve(str(tmp_path), 'old').name == 'old_1'
    assert (tmp_path / 'old.cluster.out').read_text() == 'from an earlier run'


@pytest.mark.parametrize('bad', ['a b', '../x', 'x/y', '', 'a;b', '$(x)', 'a\nb'])
def test_reserve_rejects_unsafe_names(tmp_path, bad):
    with pytest.raises(OptionError, match='job name'):
        reserve(str(tmp_path), bad)


def test_script_write_clean_and_written(tmp_path):
    script = Script(str(tmp_path / 's.sh'), 'echo hi\n')
    assert not script.written
    script.write()
    assert script.written and open(script.path).read() == 'echo hi\n'
    assert stat.S_IMODE(os.stat(script.path).st_mode) == 0o600
    other = Script(script.path, 'different\n')
    with pytest.raises(FileExistsError):
        other.write(overwrite=False)
    assert open(script.path).read() == 'echo hi\n'
    other.write()
    assert other.written and not script.written
    other.clean()
    assert not os.path.exists(script.path)
    other.clean()  # twice is fine

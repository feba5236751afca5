"""A batch system is its own modules plus its registry entries. Grid Engine, the fourth
system, is the proof: a copy of the package without ``batch/sge.py``, its
``batch/_sge_*.py`` helpers and its two ``'sge':`` registry lines (``SYSTEMS`` and
``SETTINGS``) imports whole and runs jobs. (That no other module names a system is
tests/test_architecture.py's rule.) The test copies the package that is imported: a
checkout, or an installed wheel."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import cluster

PACKAGE = pathlib.Path(cluster.__file__).parent


WITHOUT_GRID_ENGINE = textwrap.dedent('''
    import importlib, pathlib, pkgutil, sys
    import cluster
    from cluster import batch, options
    assert pathlib.Path(cluster.__file__).parent == pathlib.Path(sys.argv[1]), cluster.__file__
    for module in pkgutil.walk_packages(cluster.__path__, 'cluster.'):
        importlib.import_module(module.name)
    assert list(batch.SYSTEMS) == ['slurm', 'torque', 'local'] and batch.SETTINGS == {}
    assert [cls.name for cls in batch.systems()] == ['slurm', 'torque', 'local']
    help_text = options.option_help(mode='string')
    assert '#SBATCH' in help_text and '#PBS' in help_text and '#$' not in help_text
    for qtype in ('slurm', 'torque'):
        print(qtype, repr(options.options_to_string({'cores': 2, 'time': '01:00:00'}, qtype)))
    def add(a, b):
        return a + b
    assert cluster.submit(add, (2, 3), qtype='local').get(timeout=60) == 5
    assert cluster.submit('echo without grid engine', qtype='local').get_stdout(
        timeout=60).strip() == 'without grid engine'
    print('ran')
''')


def test_grid_engine_leaves_with_its_modules_and_its_two_registry_lines(tmp_path):
    """Issue 15's measure of the seam, on the tree as it is: removing Grid Engine is
    deleting ``batch/sge.py`` and its ``batch/_sge_*.py`` helpers and the ``'sge':``
    entries of ``SYSTEMS`` and ``SETTINGS``; every other module imports and works."""
    copy = tmp_path / 'site' / 'cluster'
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns('__pycache__'))
    gone = sorted(path.name for path in (copy / 'batch').glob('*sge*'))
    assert gone == ['_sge_parse.py', '_sge_requeue.py', 'sge.py']
    for name in gone:
        (copy / 'batch' / name).unlink()
    registry = copy / 'batch' / '__init__.py'
    lines = registry.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.lstrip().startswith("'sge':")]
    assert len(lines) - len(kept) == 2
    registry.write_text(''.join(kept))
    home = tmp_path / 'home'
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith('SGE_')}
    env.update(HOME=str(home), PYTHONPATH=str(copy.parent),
               CLUSTER_CONFIG=str(tmp_path / 'cluster.ini'))
    result = subprocess.run([sys.executable, '-c', WITHOUT_GRID_ENGINE, str(copy)],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "slurm '#SBATCH --cpus-per-task=2\\n#SBATCH --time=01:00:00'",
        "torque '#PBS -l nodes=1:ppn=2\\n#PBS -l walltime=01:00:00'", 'ran']

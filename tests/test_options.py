"""Tests of cluster/options.py: normalisation, bad input, header rendering (golden), help."""
from __future__ import annotations

import datetime
import logging
import os
import pathlib
import re
import subprocess
import sys

import pytest

from cluster import batch, options
from cluster.run.errors import OptionError
from cluster.options import (OPTIONS, SYNONYMS, canonical, check_arguments, option_help,
                             option_to_string, options_to_string)
from support import require

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = pathlib.Path(__file__).resolve().parent / 'golden' / 'options'
#: set to 1 to rewrite the golden files (deliberately, then review the diff)
REGENERATE = os.environ.get('CLUSTER_REGEN_GOLDEN') == '1'

#: one or more sample values per directive option, rendered into the golden files
SAMPLES = [
    ('cores', 4), ('nodes', 2), ('mem', '4GB'), ('mem', 1500), ('time', '1-00:00:00'),
    ('time', 90), ('features', ['ib', 'avx2']), ('features', 'gpu'),
    ('partition', 'short'), ('account', 'lab42'), ('qos', 'high'), ('name', 'align.1'),
    ('export', 'ALL'), ('export', 'NONE'), ('export', 'PATH,SEED=7'), ('export', 'all,SEED=7'),
    ('begin', '2026-01-02T03:04:05'), ('begin', '2026-01-02'), ('begin', '13:30'),
    ('outfile', '/data/run.%j.out'), ('errfile', 'run.err'),
]
#: every directive option at once, to pin the order and torque's combined nodes line
ALL_AT_ONCE = {'cpus': 4, 'nodes': 2, 'memory': '1.5G', 'walltime': '2:00:00',
               'constraint': 'ib,avx2', 'queue': 'short', 'account': 'lab42', 'qos': 'high',
               'jobname': 'align', 'export': 'ALL', 'begin': '2026-01-02T03:04',
               'stdout': 'a.out', 'stderr': 'a.err', 'dir': '/tmp', 'suffix': 'x',
               'modules': 'python', 'imports': 'numpy', 'depends': ['1', 2]}


def _render_golden(qtype: str) -> str:
    blocks = [f'# option_to_string(name, value, {qtype!r}) for sample values.',
              '# Regenerate deliberately: CLUSTER_REGEN_GOLDEN=1 pytest tests/test_options.py', '']
    for name, value in SAMPLES:
        blocks += [f'[{name} = {value!r}]', option_to_string(name, value, qtype), '']
    blocks += [f'[options_to_string({ALL_AT_ONCE!r})]', options_to_string(ALL_AT_ONCE, qtype)]
    return '\n'.join(blocks) + '\n'


# ---------------------------------------------------------------------------------------
# golden renderings
# ---------------------------------------------------------------------------------------

def test_samples_cover_every_directive_option():
    directives = {name for name, option in OPTIONS.items() if option.kind == 'directive'}
    assert directives == {name for name, _ in SAMPLES}
    assert directives == {canonical(key) for key in ALL_AT_ONCE} - {
        name for name, option in OPTIONS.items() if option.kind == 'job'}


@pytest.mark.parametrize('qtype', ['slurm', 'torque'])
def test_golden_rendering(qtype):
    path = GOLDEN / f'{qtype}.txt'
    got = _render_golden(qtype)
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    expected = path.read_text()
    assert got == expected, f'{qtype} rendering differs from {path}; got:\n{got}'


@pytest.mark.parametrize('qtype', ['slurm', 'torque'])
def test_every_directive_option_renders_a_line(qtype):
    for name, value in SAMPLES:
        if (name, value) == ('export', 'NONE') and qtype == 'torque':
            continue  # torque exports nothing by default: nothing to write
        text = option_to_string(name, value, qtype)
        assert text.startswith(batch.system_class(qtype).prefix + ' '), (name, value, text)


def test_torque_combines_nodes_cores_features_into_one_line():
    assert options_to_string({'cores': 3}, 'torque') == '#PBS -l nodes=1:ppn=3'
    assert options_to_string({'nodes': 2}, 'torque') == '#PBS -l nodes=2'
    assert options_to_string({'features': 'a,b'}, 'torque') == '#PBS -l nodes=1:a:b'
    assert (options_to_string({'nodes': 2, 'cores': 8, 'features': ['ib']}, 'torque')
            == '#PBS -l nodes=2:ppn=8:ib')
    assert options_to_string({'features': []}, 'torque') == ''


def test_slurm_constraint_and_examples():
    assert option_to_string('mem', '4GB', 'slurm') == '#SBATCH --mem=4096'
    assert option_to_string('mem', '4GB', 'torque') == '#PBS -l mem=4096MB'
    assert option_to_string('constraint', ['a', 'b'], 'slurm') == '#SBATCH --constraint=a&b'
    assert option_to_string('export', 'ALL', 'torque') == '#PBS -V'


def test_options_to_string_is_in_table_order_whatever_the_input_order():
    forward = options_to_string({'time': 60, 'mem': 10, 'cores': 2}, 'slurm')
    backward = options_to_string({'cores': 2, 'mem': 10, 'time': 60}, 'slurm')
    assert forward == backward == ('#SBATCH --cpus-per-task=2\n#SBATCH --mem=10\n'
                                   '#SBATCH --time=00:01:00')


def test_local_mode_renders_nothing():
    assert options_to_string(ALL_AT_ONCE, 'local') == ''
    assert option_to_string('mem', '4G', 'local') == ''


def test_job_kind_and_missing_values_give_debug_line_and_empty(caplog):
    caplog.set_level(logging.DEBUG, logger='cluster.options')
    for name in ('modules', 'depends', 'dir', 'filedir', 'suffix', 'imports'):
        assert OPTIONS[name].kind == 'job'
        caplog.clear()
        assert option_to_string(name, None, 'slurm') == ''
        assert option_to_string(name, OPTIONS[name].default or 'x', 'torque') == ''
        assert any(name in record.getMessage() for record in caplog.records), name
    caplog.clear()
    assert option_to_string('mem', None, 'slurm') == ''  # no default
    assert 'mem' in caplog.text


def test_value_none_uses_the_default():
    assert option_to_string('cores', None, 'slurm') == '#SBATCH --cpus-per-task=1'
    assert option_to_string('nodes', qtype='torque') == '#PBS -l nodes=1'


def test_qtype_none_detects(monkeypatch):
    monkeypatch.setattr(batch, 'detect', lambda refresh=False: 'torque')
    assert option_to_string('queue', 'short') == '#PBS -q short'
    assert options_to_string({'queue': 'short'}) == '#PBS -q short'
    monkeypatch.setattr(batch, 'detect', lambda refresh=False: 'slurm')
    assert option_to_string('queue', 'short') == '#SBATCH --partition=short'


def test_unknown_qtype():
    with pytest.raises(OptionError, match=r"unknown qtype 'pbspro'.*slurm, sge, torque, local"):
        option_to_string('mem', 1, 'pbspro')


def test_begin_relative_becomes_absolute_for_torque():
    before = datetime.datetime.now().replace(microsecond=0)
    text = option_to_string('begin', 'now+2hours', 'torque')
    after = datetime.datetime.now()
    moment = datetime.datetime.strptime(text.split()[-1], '%Y%m%d%H%M.%S')
    assert before + datetime.timedelta(hours=2) <= moment <= after + datetime.timedelta(hours=2)
    assert option_to_string('begin', 'now+2hours', 'slurm') == '#SBATCH --begin=now+2hours'


def test_header_unsafe_path_is_refused_at_render_time_only():
    assert check_arguments({'outfile': 'my run.out'}) == {'outfile': 'my run.out'}
    with pytest.raises(OptionError) as info:
        options_to_string({'outfile': 'my run.out'}, 'slurm')
    message = str(info.value)
    assert "'outfile'" in message and "'my run.out'" in message and 'whitespace' in message
    assert options_to_string({'outfile': 'my run.out'}, 'local') == ''


# ---------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------

def test_acceptance_example():
    assert check_arguments({'memory': '4GB', 'walltime': '1-00:00:00', 'cpus': 4}) == {
        'mem': 4096, 'time': '24:00:00', 'cores': 4}


def test_check_arguments_returns_a_new_dict_with_only_given_keys():
    given = {'cpus': '2'}
    result = check_arguments(given)
    assert result == {'cores': 2} and given == {'cpus': '2'} and result is not given
    assert check_arguments({}) == {}
    assert check_arguments({'mem': None}) == {'mem': None}


@pytest.mark.parametrize('value, megabytes', [
    (4096, 4096), ('4096', 4096), ('4GB', 4096), ('4gb', 4096), ('4 G', 4096), ('4g', 4096),
    ('1.5G', 1536), ('512k', 1), ('2048KB', 2), ('3000kb', 3), ('1t', 1024 ** 2),
    ('2TB', 2 * 1024 ** 2), ('10m', 10), ('10MB', 10), ('100b', 1), ('1073741824B', 1024),
    ('0.5', 1), ('2GiB', 2048), (2.5, 3),
])
def test_mem(value, megabytes):
    assert check_arguments({'mem': value}) == {'mem': megabytes}


@pytest.mark.parametrize('value, normal', [
    ('1-00:00:00', '24:00:00'), ('2-03:04:05', '51:04:05'), ('12:00:00', '12:00:00'),
    ('100:00:00', '100:00:00'), ('90', '00:01:30'), (90, '00:01:30'), ('05:30', '00:05:30'),
    ('90:00', '01:30:00'), ('3600', '01:00:00'), (datetime.timedelta(minutes=2), '00:02:00'),
])
def test_time(value, normal):
    assert check_arguments({'time': value}) == {'time': normal}


def test_list_options():
    assert check_arguments({'features': 'a, b'}) == {'features': ['a', 'b']}
    assert check_arguments({'constraint': ('x',)}) == {'features': ['x']}
    assert check_arguments({'modules': 'python/3.11,gcc'}) == {'modules': ['python/3.11', 'gcc']}
    assert check_arguments({'imports': ['numpy', 'import numpy as np',
                                        'from os  import path, sep']}) == {
        'imports': ['numpy', 'import numpy as np', 'from os import path, sep']}


class _FakeJob:
    id = '17'


def test_depends():
    job = _FakeJob()
    assert check_arguments({'depends': 5}) == {'depends': ['5']}
    assert check_arguments({'dependency': '5'}) == {'depends': ['5']}
    result = check_arguments({'dependencies': [job, 6, '7']})['depends']
    assert result[0] is job and result[1:] == ['6', '7']


def test_paths_and_names(tmp_path):
    assert check_arguments({'dir': pathlib.Path('rel')}) == {'dir': os.path.abspath('rel')}
    assert check_arguments({'scriptpath': str(tmp_path)}) == {'filedir': str(tmp_path)}
    assert check_arguments({'stdout': pathlib.Path('a.out')}) == {'outfile': 'a.out'}
    assert check_arguments({'suffix': 'run1'}) == {'suffix': 'run1'}
    assert check_arguments({'export': 'all'}) == {'export': 'ALL'}
    assert check_arguments({'begin': datetime.datetime(2026, 1, 2, 3, 4, 5, 6)}) == {
        'begin': '2026-01-02T03:04:05'}
    assert check_arguments({'begin': 'now+1hour'}) == {'begin': 'now+1hours'}


def test_check_arguments_is_idempotent():
    once = check_arguments(ALL_AT_ONCE)
    assert check_arguments(once) == once


def test_canonical_and_tables():
    assert canonical('WALLTIME') == 'time'
    assert canonical('mem') == 'mem'
    assert SYNONYMS['runpath'] == 'dir' and SYNONYMS['cpus'] == 'cores'
    assert not set(SYNONYMS) & set(OPTIONS)
    for name in ('cores', 'threads', 'nodes', 'mem', 'time', 'partition', 'account', 'qos', 'features',
                 'export', 'begin', 'modules', 'depends', 'outfile', 'errfile', 'dir',
                 'filedir', 'suffix', 'imports', 'name'):
        assert name in OPTIONS


# ---------------------------------------------------------------------------------------
# bad input: every message names the keyword, the value and the accepted forms
# ---------------------------------------------------------------------------------------

def test_unknown_keyword_suggests_close_matches():
    with pytest.raises(OptionError) as info:
        check_arguments({'memroy': '4GB'})
    message = str(info.value)
    assert "'memroy'" in message and "'mem'" in message and 'did you mean' in message
    with pytest.raises(OptionError, match=r"'walltme'.*'walltime' \(synonym of 'time'\)"):
        check_arguments({'walltme': 1})
    with pytest.raises(OptionError, match=r"'cores'"):
        canonical('core')


def test_unknown_keyword_without_close_match_lists_keywords():
    with pytest.raises(OptionError) as info:
        check_arguments({'zzzzzz': 1})
    assert "'zzzzzz'" in str(info.value) and 'known keywords: cores, nodes, mem' in str(info.value)


@pytest.mark.parametrize('kwargs, fragments', [
    ({'mem': '4XB'}, ["'mem'", "'4XB'", 'k/kb', 'g/gb']),
    ({'memory': 'lots'}, ["'memory' (mem)", "'lots'", 'accepted']),
    ({'mem': 0}, ["'mem'", '0', 'more than 0']),
    ({'mem': -5}, ["'mem'", '-5']),
    ({'mem': True}, ["'mem'", 'True']),
    ({'mem': ['4G']}, ["'mem'", "['4G']", 'list', 'single value']),
    ({'time': 'abc'}, ["'time'", "'abc'", 'D-HH:MM:SS, HH:MM:SS, MM:SS or SS']),
    ({'time': '1:60:00'}, ["'time'", "'1:60:00'", 'below 60']),
    ({'time': '10:61'}, ["'time'", "'10:61'", 'below 60']),
    ({'time': '1-25:00:00'}, ["'time'", 'below 24']),
    ({'time': '1-10'}, ["'time'", "'1-10'", 'D-HH:MM:SS']),
    ({'time': 0}, ["'time'", 'at least one second']),
    ({'walltime': 1.5}, ["'walltime' (time)", '1.5']),
    ({'cores': -1}, ["'cores'", '-1', 'positive int']),
    ({'cores': 0}, ["'cores'", '0', 'positive int']),
    ({'cpus': 'abc'}, ["'cpus' (cores)", "'abc'", 'positive int']),
    ({'cores': 2.5}, ["'cores'", '2.5', 'positive int']),
    ({'cores': [1, 2]}, ["'cores'", '[1, 2]', 'list']),
    ({'nodes': True}, ["'nodes'", 'True']),
    ({'partition': ['a', 'b']}, ["'partition'", "['a', 'b']", 'list']),
    ({'partition': 'a b'}, ["'partition'", "'a b'", 'whitespace']),
    ({'queue': 'a\nb'}, ["'queue' (partition)", "'a\\nb'", 'newline']),
    ({'account': ''}, ["'account'", "''", 'empty']),
    ({'qos': 'x"y'}, ["'qos'", 'quote']),
    ({'name': 'my job'}, ["'name'", "'my job'", 'letters, digits']),
    ({'outfile': 'a\nb'}, ["'outfile'", 'newline']),
    ({'outfile': 3}, ["'outfile'", '3', 'a path']),
    ({'dir': ['a']}, ["'dir'", 'list']),
    ({'suffix': 'a/b'}, ["'suffix'", "'a/b'", 'letters, digits']),
    ({'features': 'a b'}, ["'features'", "'a b'", 'feature']),
    ({'features': [1]}, ["'features'", '[1]', 'not a string']),
    ({'modules': 'a;rm -rf'}, ["'modules'", 'module']),
    ({'imports': 'os; import sys'}, ["'imports'", 'import statement']),
    ({'depends': [None]}, ["'depends'", 'None', 'job id']),
    ({'depends': [[1]]}, ["'depends'", '[[1]]', 'job id']),
    ({'depends': 'a b'}, ["'depends'", "'a b'", 'whitespace']),
    ({'export': 'A B'}, ["'export'", "'A B'", 'ALL, NONE']),
    ({'export': 'NONE,A'}, ["'export'", 'NONE cannot be combined']),
    ({'export': '1A'}, ["'export'", "'1A'", 'NAME=value']),
    ({'begin': 'tomorrow-ish'}, ["'begin'", "'tomorrow-ish'", 'YYYY-MM-DD']),
    ({'begin': '2026-13-01'}, ["'begin'", "'2026-13-01'"]),
    ({'begin': '25:00'}, ["'begin'", "'25:00'", 'time of day']),
])
def test_bad_values(kwargs, fragments):
    with pytest.raises(OptionError) as info:
        check_arguments(kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f'{fragment!r} not in {message!r}'
    option = OPTIONS[canonical(next(iter(kwargs)))]
    assert option.accepts in message


@pytest.mark.parametrize('kwargs', [{'mem': 1, 'memory': 2}, {'time': 1, 'walltime': 1},
                                    {'depend': 1, 'dependencies': 2}, {'cores': 1, 'CORES': 2}])
def test_same_option_twice_is_an_error_naming_both(kwargs):
    first, second = kwargs
    with pytest.raises(OptionError) as info:
        check_arguments(kwargs)
    assert repr(first) in str(info.value) and repr(second) in str(info.value)
    assert 'twice' in str(info.value)


def test_not_a_dict_and_non_string_key():
    with pytest.raises(OptionError, match='must be a dict'):
        check_arguments([('mem', 1)])
    with pytest.raises(OptionError, match='keyword 3 is not a string'):
        check_arguments({3: 1})


def test_option_error_is_a_value_error():
    with pytest.raises(ValueError):
        check_arguments({'cores': -1})


# ---------------------------------------------------------------------------------------
# help, in all modes, and the docs table generator
# ---------------------------------------------------------------------------------------

def test_option_help_string_lists_everything():
    text = option_help()
    for option in OPTIONS.values():
        assert re.search(rf'^  {option.name}\b', text, re.M), option.name
        for synonym in option.synonyms:
            assert synonym in text
        assert option.help in text
    assert '#SBATCH --mem=N' in text and '#PBS -l mem=NMB' in text
    assert 'cores [cpus] = 1' in text
    for group in options.GROUPS:
        assert group.capitalize() in text


def test_threads_is_the_seeds_local_option_not_a_synonym_of_cores(tmp_path, monkeypatch):
    """Issue 9 item 9: the seed wrote cores and threads together."""
    import cluster
    monkeypatch.chdir(tmp_path)
    assert 'threads' not in SYNONYMS
    assert check_arguments({'cores': 2, 'threads': '4'}) == {'cores': 2, 'threads': 4}
    job = cluster.Job('echo hi', cores=2, time='00:02:00', mem='2000', threads=4, qtype='slurm')
    assert job.options['threads'] == 4 and job.options['cores'] == 2
    for qtype in ('slurm', 'torque'):
        header = options_to_string({'cores': 2, 'threads': 4}, qtype)
        assert '2' in header and '4' not in header and 'threads' not in header   # local only
    with pytest.raises(OptionError, match="bad value for keyword 'threads'"):
        check_arguments({'threads': 0})


def test_option_help_for_one_qtype():
    text = option_help('slurm')
    assert '#SBATCH --cpus-per-task=N' in text and '#PBS' not in text and 'local:' not in text
    assert 'On torque' in option_help('torque')


def test_option_help_print(capsys):
    assert option_help('torque', mode='print') is None
    assert capsys.readouterr().out == option_help('torque') + '\n'


def test_option_help_table_rst():
    table = option_help(mode='table')
    assert table.startswith('.. list-table::')
    lines = table.splitlines()
    assert '   * - Keyword' in lines
    assert '     - Slurm' in lines and '     - Torque' in lines and '     - Local' in lines
    assert '     - ``#SBATCH --constraint=F1&F2``' in lines
    assert '     - ``#PBS -l nodes=1:F1:F2``' in lines
    assert table.count('   * - ') == len(OPTIONS) + 1
    only_torque = option_help('torque', mode='table')
    assert '     - Torque' in only_torque and 'Slurm' not in only_torque


def test_option_help_markdown():
    table = option_help(mode='markdown')
    rows = [line for line in table.splitlines() if line.startswith('| ')]
    assert len(rows) == len(OPTIONS) + 1
    header_cells = rows[0].count(' | ') + 1
    for row in rows:  # escaped pipes keep every row at the header's cell count
        assert len(re.split(r'(?<!\\)\|', row)) - 2 == header_cells, row


def test_option_help_bad_mode_and_qtype():
    with pytest.raises(ValueError, match=r"unknown mode 'html'.*string, print, table"):
        option_help(mode='html')
    with pytest.raises(OptionError, match='unknown qtype'):
        option_help('pbspro')


def test_gen_keywords_writes_the_table(tmp_path):
    out = tmp_path / 'keywords_table.rst'
    result = subprocess.run([sys.executable, str(ROOT / 'docs' / 'gen_keywords.py'), str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert 'generated by docs/gen_keywords.py' in text
    assert text.endswith(option_help(mode='table'))


# ---------------------------------------------------------------------------------------
# the real schedulers accept the rendered headers (tests/cluster/slurm_up.sh starts them)
# ---------------------------------------------------------------------------------------

def _need_slurm(program: str) -> None:
    """Skip without a running Slurm, but fail in CI, where it must be there."""
    import shutil
    up = shutil.which(program) is not None and subprocess.run(
        ['scontrol', 'ping'], capture_output=True, text=True, timeout=30).returncode == 0
    require(f'{program} with a running slurmctld', up, 'bash tests/cluster/slurm_up.sh')


def _default_partition() -> str:
    out = subprocess.run(['sinfo', '-h', '-o', '%P'], capture_output=True, text=True,
                         timeout=30, check=True).stdout.split()
    return next((p.rstrip('*') for p in out if p.endswith('*')), out[0].rstrip('*'))


REAL_OPTIONS = {'cores': 1, 'nodes': 1, 'mem': '100M', 'time': '1:00', 'jobname': 'opt_real',
                'export': 'ALL,SEED=7'}


@pytest.mark.slurm
def test_sbatch_accepts_the_slurm_header(tmp_path):
    _need_slurm('sbatch')
    header = options_to_string({**REAL_OPTIONS, 'partition': _default_partition(),
                                'begin': 'now+60', 'outfile': str(tmp_path / 'o.%j.out'),
                                'errfile': str(tmp_path / 'e.err')}, 'slurm')
    script = tmp_path / 'job.sbatch'
    script.write_text(f'#!/bin/bash\n{header}\ntrue\n')
    result = subprocess.run(['sbatch', '--test-only', str(script)], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, f'sbatch refused:\n{header}\n{result.stderr}'
    assert 'to start at' in result.stderr, result.stderr


@pytest.mark.torque
def test_torque_wrapper_reads_the_torque_header(tmp_path):
    _need_slurm('qsub')
    partition = _default_partition()
    header = options_to_string({**REAL_OPTIONS, 'cores': 2, 'partition': partition}, 'torque')
    script = tmp_path / 'job.qsub'
    script.write_text(f'#!/bin/bash\n{header}\n#PBS -h\ntrue\n')  # held: never runs
    result = subprocess.run(['qsub', str(script)], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    job_id = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ''
    assert result.returncode == 0 and job_id.isdigit(), f'qsub refused:\n{header}\n{result}'
    try:
        info = subprocess.run(['scontrol', '-o', 'show', 'job', job_id], capture_output=True,
                              text=True, timeout=30, check=True).stdout
        fields = dict(item.split('=', 1) for item in info.split() if '=' in item)
        assert fields['JobName'] == 'opt_real', info
        assert fields['TimeLimit'] == '00:01:00', info
        assert fields['NumCPUs'] == '2', info
        assert fields['MinMemoryNode'] == '100M', info
        assert fields['Partition'] == partition, info
    finally:
        subprocess.run(['scancel', job_id], capture_output=True, timeout=30)


def test_docstring_examples_hold():
    import doctest
    result = doctest.testmod(options.table)
    assert result.attempted >= 4 and result.failed == 0

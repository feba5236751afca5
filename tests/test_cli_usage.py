"""The `cluster` command as a new user meets it (issue 10), run as a real subprocess."""
import os
import re
import subprocess
import time
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, config, cwd=None, env=None, stdin=subprocess.DEVNULL, timeout=180):
    full = dict(os.environ, CLUSTER_CONFIG=str(config), **(env or {}))
    return subprocess.run([sys.executable, '-m', 'cluster.job.cli', *args], env=full, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, stdin=stdin)


@pytest.fixture
def config(tmp_path):
    return tmp_path / 'cluster.ini'


# -- 6: a stray word before -- is refused -------------------------------------------------

def test_a_stray_word_before_the_double_dash_is_a_usage_error(config, tmp_path):
    result = cli('submit', '--qtype', 'local', '-k', 'mem=4', 'GB', '--', 'echo', 'hi',
                 config=config, cwd=tmp_path)
    assert result.returncode == 2
    assert "'GB'" in result.stderr and '--' in result.stderr
    assert 'Traceback' not in result.stderr
    assert os.listdir(tmp_path) == [] or not any(n.endswith('.out') for n in os.listdir(tmp_path))


# -- 7: no prompt without a terminal ------------------------------------------------------

def test_clean_without_a_terminal_refuses_and_names_yes(config, tmp_path):
    made = cli('submit', '--qtype', 'local', '--', 'echo', 'x', config=config, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    before = sorted(os.listdir(tmp_path))
    result = cli('clean', str(tmp_path), config=config)          # stdin is /dev/null
    assert result.returncode == 2, result.stderr
    assert '--yes' in result.stderr and 'Traceback' not in result.stderr
    assert sorted(os.listdir(tmp_path)) == before                # nothing was deleted


def test_clean_dir_asks_nothing_without_a_terminal(tmp_path):
    code = ('import cluster, sys\n'
            f'cluster.Job("echo x", qtype="local", path={str(tmp_path)!r}).submit().get()\n'
            'try:\n'
            f'    cluster.clean_dir({str(tmp_path)!r}, confirm=True)\n'
            'except cluster.ClusterError as exc:\n'
            '    print("refused:", exc)\n')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path,
                          env=dict(os.environ, CLUSTER_CONFIG=str(tmp_path / 'c.ini')))
    assert done.returncode == 0, done.stderr
    assert 'refused:' in done.stdout and 'confirm=False' in done.stdout


# -- 8: config get/set validate like profiles ----------------------------------------------

@pytest.mark.parametrize('args,needles', [
    (('config', 'set', 'queue', 'queue_updte', '1'), ('queue_updte', "'queue_update'")),
    (('config', 'get', 'queue', 'nokey'), ('nokey', 'max_queue_len')),
    (('config', 'get', 'nosuch'), ('nosuch', '[queue]')),
    (('config', 'get', 'queu'), ('queu', "'queue'")),
    (('config', 'set', 'profile.nope', 'cores', '2'), ('nope',)),
    (('config', 'get', 'profile.default', 'memm'), ('memm', "'mem'")),
])
def test_config_refuses_unknown_sections_and_keys(config, args, needles):
    result = cli(*args, config=config)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert not config.exists() or 'queue_updte' not in config.read_text()


def test_config_still_reads_and_writes_known_keys(config):
    assert cli('config', 'set', 'queue', 'queue_update', '3', config=config).returncode == 0
    assert cli('config', 'get', 'queue', 'queue_update', config=config).stdout.strip() == '3'
    shown = cli('config', 'get', 'profile.small', config=config)
    assert shown.returncode == 0 and 'cores = 1' in shown.stdout


# -- 3: profile sections are named as the file needs them -----------------------------------

def test_profile_show_prints_the_section_the_file_needs(config):
    shown = cli('profile', 'show', 'default', config=config)
    assert shown.returncode == 0
    assert shown.stdout.splitlines()[0] == '[profile.default]'
    config.write_text(shown.stdout.replace('cores = 1', 'cores = 2'))   # pasted back, it works
    again = cli('profile', 'show', 'default', config=config)
    assert 'cores = 2' in again.stdout and 'WARNING' not in again.stderr


def test_a_hand_written_section_gets_a_warning_naming_it(config):
    config.write_text('[quick]\ncores = 1\n')
    listed = cli('profile', 'list', config=config)
    assert listed.returncode == 0
    assert '[quick]' in listed.stderr and '[profile.quick]' in listed.stderr
    missing = cli('profile', 'show', 'quick', config=config)
    assert missing.returncode == 2 and '[profile.quick]' in missing.stderr


# -- 14: profile set keeps the other values as written -----------------------------------

def test_profile_set_keeps_the_other_values_as_written(config):
    config.write_text('[profile.hpc]\n# my cluster\nmem = 1GB   # per node\ncores = 2\n'
                      'walltime = 1:00:00\n')
    result = cli('profile', 'set', 'hpc', 'python=/usr/bin/python3', config=config)
    assert result.returncode == 0, result.stderr
    text = config.read_text()
    assert 'mem = 1GB   # per node\n' in text and 'walltime = 1:00:00\n' in text
    assert '# my cluster\n' in text and 'python = /usr/bin/python3\n' in text
    shown = cli('profile', 'show', 'hpc', config=config).stdout
    assert 'mem = 1024' in shown and 'time = 01:00:00' in shown


# -- 11: help texts are plain text ---------------------------------------------------------

RST = re.compile(r'``|:(func|class|mod|meth|doc|ref):`|^\.\. ', re.M)


def test_help_texts_are_plain_text(config):
    for command in ((), ('options',), ('profile',), ('config',), ('submit',), ('queue',),
                    ('wait',), ('clean',), ('demo',)):
        result = cli(*command, '--help', config=config)
        assert result.returncode == 0
        assert not RST.search(result.stdout), result.stdout


# -- 10: submit says where the output goes --------------------------------------------------

def test_submit_prints_the_id_and_the_output_file(config, tmp_path, qtype):
    result = cli('submit', '--qtype', qtype, '--', 'echo', 'where', config=config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.splitlines()[0]
    assert job_id.strip().isdigit()
    outfile = os.path.join(str(tmp_path), 'echo.cluster.out')
    assert f'output {outfile}' in result.stderr, result.stderr
    if qtype != 'local':
        waited = cli('wait', '--qtype', qtype, job_id, config=config, cwd=tmp_path)
        assert waited.returncode == 0, waited.stderr
    with open(outfile) as handle:
        assert handle.read() == 'where\n'


# -- 13: the demo cleans up after itself; a failed function's traceback is shown once ---------

def test_demo_removes_its_directory_unless_kept(config, tmp_path):
    temp = tmp_path / 'tmp'
    temp.mkdir()
    env = {'TMPDIR': str(temp)}
    result = cli('demo', '--lines', '500', config=config, env=env)
    assert result.returncode == 0, result.stderr
    assert os.listdir(temp) == []
    kept = cli('demo', '--lines', '500', '--keep', config=config, env=env)
    assert kept.returncode == 0, kept.stderr
    [left] = os.listdir(temp)
    assert left.startswith('cluster-demo-') and 'samples.tsv' in os.listdir(temp / left)
    assert str(temp / left) in kept.stdout


def test_a_failed_function_shows_its_traceback_once(tmp_path, qtype):
    script = tmp_path / 'fails.py'
    script.write_text('import cluster\n\n'
                      'def fails_on_purpose():\n'
                      '    raise ValueError("boom")\n\n'
                      f'cluster.Job(fails_on_purpose, qtype={qtype!r}).submit().get()\n')
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path,
                          env=dict(os.environ, CLUSTER_CONFIG=str(tmp_path / 'c.ini')))
    assert done.returncode == 1
    assert done.stderr.count('in fails_on_purpose') == 1, done.stderr
    assert done.stderr.rstrip().endswith('ValueError: boom')


# -- 12: time limits mean the same everywhere ------------------------------------------------

def test_local_mode_kills_a_job_at_its_time_limit(config, tmp_path):
    started = time.monotonic()
    result = cli('submit', '--qtype', 'local', '-k', 'time=2', '--', 'sleep', '60',
                 config=config, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert 'ended timeout' in result.stderr and 'time limit of 2 s' in result.stderr
    assert elapsed < 30


def test_a_local_function_job_past_its_limit_ends_timeout(tmp_path):
    code = ('import time, cluster\n'
            'from cluster.batch import State\n'
            'def slow():\n'
            '    time.sleep(60)\n'
            'job = cluster.Job(slow, qtype="local", time="00:00:02").submit()\n'
            'assert job.wait() is False\n'
            'print(job.state.value)\n'
            'print(cluster.Job("echo in-time", qtype="local", time=20).submit().get())\n')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path,
                          env=dict(os.environ, CLUSTER_CONFIG=str(tmp_path / 'c.ini')))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ['timeout', "(0, 'in-time\\n', '')"]


@pytest.mark.slurm
def test_slurm_warns_when_it_will_round_a_limit_to_minutes(config, tmp_path):
    from conftest import _require_slurm
    _require_slurm('slurm')
    result = cli('submit', '--qtype', 'slurm', '-k', 'time=00:00:10', '--', 'true',
                 config=config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'time 00:00:10 is rounded up by Slurm to whole minutes: 00:01:00' in result.stderr
    whole = cli('submit', '--qtype', 'slurm', '-k', 'time=00:02:00', '--', 'true',
                config=config, cwd=tmp_path)
    assert whole.returncode == 0 and 'rounded' not in whole.stderr


# -- 9: cluster queue shows the exit code, the pending reason and the output file -----------

def _row(listing: str, job_id: str) -> dict:
    lines = listing.splitlines()
    header = lines[0].split()
    assert header == ['id', 'state', 'exit', 'reason', 'output', 'name'], lines[0]
    starts = [lines[0].index(word) for word in header]
    for line in lines[1:]:
        if line.split()[0] == job_id:
            cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
            return dict(zip(header, cells))
    raise AssertionError(f'job {job_id} not listed:\n{listing}')


@pytest.mark.slurm
def test_queue_shows_exit_code_reason_and_output(config, tmp_path):
    from conftest import _require_slurm
    _require_slurm('slurm')
    failed = cli('submit', '--qtype', 'slurm', '--', 'bash', '-c', 'exit 3',
                 config=config, cwd=tmp_path).stdout.split()[0]
    later = cli('submit', '--qtype', 'slurm', '-k', 'begin=now+1hours', '--', 'true',
                config=config, cwd=tmp_path).stdout.split()[0]
    try:
        waited = cli('wait', '--qtype', 'slurm', failed, config=config)
        assert waited.returncode == 1 and 'exit=3' in waited.stdout, waited.stdout
        listing = cli('queue', '--qtype', 'slurm', config=config).stdout
        row = _row(listing, failed)
        assert row['exit'] == '3' and row['state'] == 'failed', row
        assert row['output'] == str(tmp_path / 'bash.cluster.out'), row
        pending = _row(listing, later)
        assert pending['state'] in ('pending', 'held') and pending['reason'] == 'BeginTime'
        assert pending['exit'] == '' and pending['output'] == str(tmp_path / 'true.cluster.out')
    finally:
        subprocess.run(['scancel', later], capture_output=True, timeout=60)

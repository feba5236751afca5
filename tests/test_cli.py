"""The `cluster` command, run as a real subprocess."""
import os
import subprocess
import sys

import pytest


def cli(*args, config, cwd=None):
    env = dict(os.environ, CLUSTER_CONFIG=str(config))
    return subprocess.run([sys.executable, '-m', 'cluster.job.cli', *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def config(tmp_path):
    return tmp_path / 'cluster.ini'


def test_options_prints_the_table(config):
    result = cli('options', '--qtype', 'slurm', config=config)
    assert result.returncode == 0
    assert 'mem' in result.stdout and 'walltime' in result.stdout and '#SBATCH' in result.stdout


def test_profiles_set_show_list_delete(config):
    assert cli('profile', 'set', 'big', 'cores=8', 'memory=4GB', config=config).returncode == 0
    shown = cli('profile', 'show', 'big', config=config)
    assert 'cores = 8' in shown.stdout and 'mem = 4096' in shown.stdout
    assert 'big' in cli('profile', 'list', config=config).stdout
    assert cli('profile', 'delete', 'big', config=config).returncode == 0
    missing = cli('profile', 'show', 'big', config=config)
    assert missing.returncode == 2 and 'big' in missing.stderr and 'default' in missing.stderr


def test_config_get_and_set(config):
    assert cli('config', 'set', 'queue', 'max_queue_len', '7', config=config).returncode == 0
    assert cli('config', 'get', 'queue', 'max_queue_len', config=config).stdout.strip() == '7'


@pytest.mark.parametrize('args,needle', [
    (('profile', 'set', 'x', 'memroy=4GB'), 'memroy'),
    (('profile', 'set', 'x', 'mem=4XB'), '4XB'),
    (('profile', 'set', 'x', 'nokeyvalue'), 'key=value'),
    (('options', '--qtype', 'pbs'), 'pbs'),
    (('frobnicate',), 'frobnicate'),
    (('submit', '--qtype', 'local'), 'command'),
])
def test_bad_input_exits_2_with_one_line(config, args, needle):
    result = cli(*args, config=config)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert not os.path.exists(config) or 'memroy' not in config.read_text()


def test_submit_and_clean_in_local_mode(config, tmp_path):
    result = cli('submit', '--qtype', 'local', '-k', 'cores=1', '--', 'echo', 'hello world',
                 config=config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['1', 'hello world']
    cleaned = cli('clean', str(tmp_path), '--yes', config=config)
    assert cleaned.returncode == 0
    assert any(line.endswith('echo.cluster.out') for line in cleaned.stdout.splitlines())
    assert not any(name.startswith('echo.') for name in os.listdir(tmp_path))


def test_help_everywhere(config):
    for command in ('options', 'profile', 'config', 'submit', 'queue', 'wait', 'clean', 'demo'):
        result = cli(command, '--help', config=config)
        assert result.returncode == 0 and 'usage: cluster' in result.stdout


def test_demo_pipeline_runs(config, tmp_path):
    result = cli('demo', '--lines', '2000', '--dir', str(tmp_path / 'demo'), config=config)
    assert result.returncode == 0, result.stderr
    assert 'matches the direct computation: OK' in result.stdout


def test_the_installed_console_script(config):
    script = os.path.join(os.path.dirname(sys.executable), 'cluster')
    assert os.access(script, os.X_OK), 'pip install -e . installs the `cluster` command'
    result = subprocess.run([script, 'options'], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, CLUSTER_CONFIG=str(config)))
    assert result.returncode == 0 and 'cores' in result.stdout and '#PBS' in result.stdout

"""The test command never skips a real-component test: a missing component fails it."""
from __future__ import annotations

import os
import re

import pytest

import support

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('variable', support.STRICT_VARIABLES)
def test_strict_runs_fail_on_a_missing_component(monkeypatch, variable):
    for name in support.STRICT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, '1')
    with pytest.raises(pytest.fail.Exception, match='a missing thing is not running'):
        support.require('a missing thing', False, 'install it')
    support.require('a present thing', True, 'nothing')  # returns


def test_a_workstation_without_the_component_skips(monkeypatch):
    for name in support.STRICT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(pytest.skip.Exception):
        support.require('a missing thing', False, 'install it')


def test_the_ci_command_is_the_strict_test_command():
    with open(os.path.join(ROOT, '.ci', 'run')) as handle:
        assert handle.read().rstrip().endswith('exec bash scripts/test.sh')
    with open(os.path.join(ROOT, 'scripts', 'test.sh')) as handle:
        lines = [line.strip() for line in handle if not line.lstrip().startswith('#')]
    strict = lines.index('export CLUSTER_TEST_STRICT=1')
    runs = [n for n, line in enumerate(lines) if '"${PYTEST[@]}"' in line or '-m pytest' in line]
    assert runs and min(runs) > strict  # every pytest run is strict
    # every group's exit code is kept, and the script fails unless each is 0
    kept = set(re.findall(r'\|\| (\w+)=\$\?', '\n'.join(lines)))
    checked = set(re.findall(r'(\w+) == 0', lines[-1]))
    assert kept == checked == {'main', 'waits', 'alone', 'apart'}, (kept, lines[-1])

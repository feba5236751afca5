"""Small helpers every test module may use: real components are required, never faked."""
from __future__ import annotations

import os
from typing import Dict

import pytest

# Strict: a missing real component fails. scripts/test.sh (the README's test command and
# .ci/run) sets CLUSTER_TEST_STRICT, so it never skips whatever the CI runner exports.
STRICT_VARIABLES = ('CI', 'CLUSTER_TEST_STRICT')


def strict() -> bool:
    """True when missing real components must fail the run instead of skipping."""
    return any(os.environ.get(name) for name in STRICT_VARIABLES)


def require(component: str, ready: bool, how: str) -> None:
    """Fail when strict (the full test command, CI) and a real component is missing;
    skip on a workstation that lacks it."""
    if ready:
        return
    message = f'{component} is not running; start it with {how}'
    if strict():
        pytest.fail(message)
    pytest.skip(message)


def read_env_file(path: str) -> Dict[str, str]:
    """NAME=value lines of a set-up script's state file."""
    values = {}
    with open(path) as handle:
        for line in handle:
            name, sep, value = line.strip().partition('=')
            if sep:
                values[name] = value
    return values

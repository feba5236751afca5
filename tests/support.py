"""Small helpers every test module may use: real components are required, never faked."""
from __future__ import annotations

import os
from typing import Dict

import pytest

IN_CI = bool(os.environ.get('CI'))


def require(component: str, ready: bool, how: str) -> None:
    """Fail in CI when a real component is missing (never skip there); skip elsewhere."""
    if ready:
        return
    message = f'{component} is not running; start it with {how}'
    if IN_CI:
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

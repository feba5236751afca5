"""The KEY=VALUE files the test set-up scripts leave in their state directory."""
from __future__ import annotations

import os
from typing import Dict, Optional

STATE = os.environ.get('CLUSTER_TEST_STATE', '/var/lib/cluster-test')


def read_env(*names: str) -> Optional[Dict[str, str]]:
    """The settings of ``names`` (e.g. ``sshd.env``) merged; None if one is missing."""
    values: Dict[str, str] = {}
    for name in names:
        path = os.path.join(STATE, name)
        if not os.path.isfile(path):
            return None
        with open(path) as handle:
            for line in handle:
                key, sep, value = line.strip().partition('=')
                if sep:
                    values[key] = value
    return values

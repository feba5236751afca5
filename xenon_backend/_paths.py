"""Where the package keeps its per-user files."""
from __future__ import annotations

import os
from pathlib import Path


def user_data_dir() -> Path:
    """Per-user data directory of the project (platformdirs' ``user_data_dir('cluster')``:
    ``$XDG_DATA_HOME/cluster`` or ``~/.local/share/cluster`` on Linux)."""
    try:
        from platformdirs import user_data_dir as platform_dir  # optional: platformdirs
    except ImportError:  # a build environment without it: the same place on Linux
        base = os.environ.get('XDG_DATA_HOME') or os.path.join(os.path.expanduser('~'),
                                                               '.local', 'share')
        return Path(base) / 'cluster'
    return Path(platform_dir('cluster', appauthor=False))

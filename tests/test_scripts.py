"""The README's two commands, as CI runs them, work as root (no sudo) and as a user with sudo."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534


def readme_commands() -> List[str]:
    """The command lines of the README's first code block, without their comments."""
    block = re.search(r'```\w*\n(.*?)```', (ROOT / 'README.md').read_text(), re.S).group(1)
    return [line.split('#', 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_test_command_and_no_line_needs_sudo():
    install, test = readme_commands()
    assert install.startswith('bash scripts/install.sh')
    ci = [line for line in (ROOT / '.ci' / 'run').read_text().splitlines()
          if line.strip() and not line.lstrip().startswith('#')]
    assert ci[-1] == f'exec {test}'
    for line in (install, test):
        assert 'sudo' not in shlex.split(line), line
        script = ROOT / shlex.split(line)[1]
        assert script.is_file(), line


@pytest.fixture
def tiny_path():
    """A PATH directory (readable by nobody) holding only what test.sh's first lines use."""
    directory = Path(tempfile.mkdtemp(prefix='cluster-path-'))
    os.chmod(directory, 0o755)
    for name in ('bash', 'id', 'dirname', 'env'):
        os.symlink(shutil.which(name), directory / name)
    yield directory
    shutil.rmtree(directory)


def run_test_sh(path: Path, as_nobody: bool) -> subprocess.CompletedProcess:
    argv = ['bash', str(ROOT / 'scripts' / 'test.sh'), '-k', 'x']
    if as_nobody:
        argv = [shutil.which('setpriv'), f'--reuid={NOBODY}', f'--regid={NOBODY}', '--clear-groups', *argv]
    return subprocess.run(argv, env={'PATH': str(path)}, capture_output=True, text=True,
                          timeout=60, cwd='/')


def add_fake_sudo(path: Path) -> None:
    sudo = path / 'sudo'
    sudo.write_text('#!/bin/sh\necho "sudo was called: $*"\n')
    os.chmod(sudo, 0o755)


def test_test_sh_elevates_through_sudo_only_when_not_root(tiny_path):
    if os.getuid() != 0:
        pytest.fail('this test switches users: run the suite as root (scripts/test.sh does)')
    add_fake_sudo(tiny_path)
    user = run_test_sh(tiny_path, as_nobody=True)
    assert user.stdout.strip() == 'sudo was called: bash scripts/test.sh -k x', user.stderr
    # As root it goes straight on, to install.sh, which stops at once on this PATH
    # (no python3, no apt-get) and never calls sudo either.
    root = run_test_sh(tiny_path, as_nobody=False)
    assert 'sudo was called' not in root.stdout + root.stderr
    assert root.returncode != 0 and 'scripts/install.sh: line' in root.stderr, root.stderr
    (tiny_path / 'sudo').unlink()
    no_sudo = run_test_sh(tiny_path, as_nobody=True)
    assert no_sudo.returncode == 1
    assert 'sudo is not installed: run it as root' in no_sudo.stderr

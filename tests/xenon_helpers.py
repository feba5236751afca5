"""Helpers of the xenon_backend tests (the fixtures are in xenon_fixtures.py).

Without java, the jar or the stubs (or without the test sshd for the ``sshd`` tests)
the tests are skipped on a workstation and FAIL in a strict run (scripts/test.sh, CI):
see ``support.require``.
"""
from __future__ import annotations

import os
import shutil

from support import read_env_file  # noqa: F401 (xenon_fixtures imports it from here)
from support import require as support_require
SSHD_ENV_FILE = os.environ.get('CLUSTER_TEST_SSHD_ENV', '/var/lib/cluster-test/sshd.env')
SSH_PROPERTIES = {'xenon.adaptors.schedulers.ssh.strictHostKeyChecking': 'false',
                  'xenon.adaptors.schedulers.ssh.loadKnownHosts': 'false',
                  'xenon.adaptors.schedulers.ssh.queue.pollingDelay': '100'}
SFTP_PROPERTIES = {'xenon.adaptors.filesystems.sftp.strictHostKeyChecking': 'false',
                   'xenon.adaptors.filesystems.sftp.loadKnownHosts': 'false'}


def require(component: str, problem: str, how: str) -> None:
    """Like ``support.require``, for checks that say what is missing ('' when nothing)."""
    support_require(f'{component} ({problem})' if problem else component, not problem, how)


def xenon_missing() -> str:
    """What is missing to run the real server, or '' when nothing is."""
    from xenon_backend import build
    if not (shutil.which('java') or os.environ.get('JAVA_HOME')):
        return 'java is not installed'
    try:
        build.find_jar()
    except build.BuildError as exc:
        return str(exc)
    try:
        from xenon_backend import _stubs
        _stubs.modules()
    except Exception as exc:  # noqa: BLE001
        return str(exc)
    return ''



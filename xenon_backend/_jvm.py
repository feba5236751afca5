"""The JVM of the xenon-grpc server as a process: java, ports, the watchdog, its log levels."""
from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess

from .exceptions import XenonServerError

JAVA_HINT = 'install java: apt-get install default-jre-headless'
_JVM_LEVEL = re.compile(r'\b(TRACE|DEBUG|INFO|WARN|ERROR)\b')
_LEVELS = {'TRACE': logging.DEBUG, 'DEBUG': logging.DEBUG, 'INFO': logging.INFO,
           'WARN': logging.WARNING, 'ERROR': logging.ERROR}
_VERBOSITY = {'DEBUG': ['-vvv'], 'INFO': ['-v']}


def find_java() -> str:
    """Path of the ``java`` program (``$JAVA_HOME/bin/java`` or on PATH)."""
    java_home = os.environ.get('JAVA_HOME')
    if java_home and os.access(os.path.join(java_home, 'bin', 'java'), os.X_OK):
        return os.path.join(java_home, 'bin', 'java')
    java = shutil.which('java')
    if not java:
        raise XenonServerError('find_java', None, f'java is not installed: {JAVA_HINT}')
    return java


def free_port() -> int:
    """A TCP port that is free on this machine right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('', 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = '127.0.0.1', timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def watchdog(group: int) -> subprocess.Popen:
    """A shell that kills process group ``group`` once this process is gone.

    It reads a pipe that only this process holds open, so it sees end-of-file however
    this process ends, SIGKILL included (atexit handlers do not run then). Children
    forked meanwhile hold the pipe too: the JVM then ends with the last of them.
    """
    script = f'while read -r _; do :; done; kill -KILL -{group}'  # dash: no '--'
    return subprocess.Popen(['/bin/sh', '-c', script], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def verbosity(log_level: int) -> list:
    """The xenon-grpc options that make it log from ``log_level`` on."""
    return list(_VERBOSITY.get(logging.getLevelName(log_level), []))


def line_level(line: str) -> int:
    """The logging level of one line of the JVM's output."""
    if 'Server started' in line:  # logged at ERROR by xenon-grpc; it is news, not an error
        return logging.INFO
    match = _JVM_LEVEL.search(line)
    return _LEVELS[match.group(1)] if match else logging.INFO

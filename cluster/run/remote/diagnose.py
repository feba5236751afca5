"""Why a connection failed: xenon-grpc 3.0.1 reports an unknown host key, a refused key and a
host that never answered all as "authentication failed", so the cause is found here.

:func:`explain` turns a failed connect into a :class:`RemoteError` subclass whose message
names the host (and user) and says what to do.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from typing import Optional, Tuple

from .endpoint import (AuthenticationError, Endpoint, HostKeyError, HostUnreachableError,
                       RemoteError)

logger = logging.getLogger(__name__)

KNOWN_HOSTS = '~/.ssh/known_hosts'


def ssh_greeting(host: str, port: int, timeout: float) -> str:
    """The server's ``SSH-2.0-...`` line; raises HostUnreachableError naming host:port."""
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(max(0.1, timeout - (time.monotonic() - started)))
            data = b''
            while b'\n' not in data and len(data) < 4096:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
    except socket.timeout:
        raise HostUnreachableError(
            f'{host}:{port} did not answer within the connect timeout of {timeout:g} s') from None
    except socket.gaierror as exc:
        raise HostUnreachableError(f'cannot resolve the host name {host!r}: {exc}') from None
    except OSError as exc:
        raise HostUnreachableError(f'cannot reach {host}:{port}: {exc.strerror or exc}') from None
    line = data.split(b'\n', 1)[0].decode(errors='replace').strip()
    if not line.startswith('SSH-'):
        raise HostUnreachableError(f'{host}:{port} does not speak SSH (it said {line[:80]!r})')
    return line


#: names of this machine: Xenon looks a loopback host up under both (a tunnel too)
LOOPBACK = ('127.0.0.1', 'localhost')


def host_names(host: str) -> Tuple[str, ...]:
    """The names the host key must be known under: both loopback names for this machine."""
    return LOOPBACK if host in LOOPBACK or host == '::1' else (host,)


def known_hosts_entry(host: str, port: int, path: str = KNOWN_HOSTS) -> Optional[bool]:
    """True when ``ssh-keygen -F`` finds every name of the host, False when one is missing,
    None if it cannot tell."""
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        return False
    keygen = shutil.which('ssh-keygen')
    if not keygen:
        return None
    for name in host_names(host):
        entry = name if port == 22 else f'[{name}]:{port}'
        try:
            result = subprocess.run([keygen, '-F', entry, '-f', path], capture_output=True,
                                    text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        if result.returncode != 0 or not result.stdout.strip():
            return False
    return True


def keyscan_command(host: str, port: int) -> str:
    """A shell command that adds the host's keys to ~/.ssh/known_hosts on a fresh account."""
    port_option = '' if port == 22 else f'-p {port} '
    names = ' '.join(host_names(host))
    return (f'mkdir -p ~/.ssh && chmod 700 ~/.ssh && ssh-keyscan {port_option}{names} '
            f'>> {KNOWN_HOSTS}')


def how_to_accept(endpoint: Endpoint) -> str:
    port = '' if endpoint.port == 22 else f'-p {endpoint.port} '
    login = ('' if endpoint.host in host_names('localhost') else
             f' (or log in once with `ssh {port}{endpoint.user}@{endpoint.host}`)')
    return (f'run `{keyscan_command(endpoint.host, endpoint.port)}`, then check the '
            f'fingerprints that `ssh-keygen -lf {KNOWN_HOSTS}` prints against the ones your '
            f'cluster publishes{login}; through a tunnel, run it while the tunnel is up. Or '
            f'set strict_host_key = false in the profile (test machines only)')


def explain(endpoint: Endpoint, error: Exception) -> RemoteError:
    """The clear error for a failed connection to ``endpoint`` (``error`` is Xenon's)."""
    from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
    message = getattr(error, 'message', str(error))
    if isinstance(error, RemoteError):
        return error
    if 'Certificate not found' in message or 'No such file' in message:
        return AuthenticationError(f'the key file {endpoint.key!r} of {endpoint.address} '
                                   f'cannot be read: {message}')
    try:
        ssh_greeting(endpoint.host, endpoint.port, endpoint.timeout)
    except HostUnreachableError as unreachable:
        return unreachable
    if endpoint.strict_host_key and known_hosts_entry(endpoint.host, endpoint.port) is False:
        return HostKeyError(f'the host key of {endpoint.host}:{endpoint.port} is not in '
                            f'{KNOWN_HOSTS} and strict_host_key is on: {how_to_accept(endpoint)}')
    if isinstance(error, xe.InvalidCredentialException):
        how = f'with the key {endpoint.key}' if endpoint.key else 'with a password or the default keys'
        extra = (' (or its host key differs from the one in known_hosts)'
                 if endpoint.strict_host_key else '')
        return AuthenticationError(f'authentication failed for {endpoint.user}@{endpoint.host} '
                                   f'(port {endpoint.port}) {how}{extra}')
    return RemoteError(f'cannot connect to {endpoint.address}: {message}')

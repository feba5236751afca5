"""Why a connection failed: xenon-grpc 3.0.1 reports an unknown host key, a refused key and a
host that never answered all as "authentication failed", so the cause is found here.

:func:`explain` turns a failed connect into a :class:`RemoteError` subclass whose message
names the host (and user) and says what to do.
"""
from __future__ import annotations

import logging
import socket
import time
from typing import Optional

from .endpoint import (AuthenticationError, Endpoint, HostKeyError, HostUnreachableError,
                       RemoteError)
from .known_hosts import (KNOWN_HOSTS, add_keys_command, first_key_types, offers_ecdsa,
                          replace_keys_command)

logger = logging.getLogger(__name__)


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


def how_to_accept(endpoint: Endpoint, command: Optional[str] = None) -> str:
    command = command or add_keys_command(endpoint.host, endpoint.port)
    return (f'run `{command}`, then check the fingerprints that `ssh-keygen -lf '
            f'{KNOWN_HOSTS}` prints against the ones your cluster publishes; through a '
            f'tunnel, run it while the tunnel is up. Or set strict_host_key = false in the '
            f'profile (test machines only)')


def explain(endpoint: Endpoint, error: Exception,
            elapsed: Optional[float] = None) -> RemoteError:
    """The clear error for a failed connection to ``endpoint`` (``error`` is Xenon's, after
    ``elapsed`` seconds)."""
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
    if endpoint.strict_host_key:
        refused = _refused_host_key(endpoint)
        if refused:
            return refused
    if elapsed is not None and elapsed >= endpoint.timeout:
        return HostUnreachableError(
            f'{endpoint.address} did not finish the SSH handshake and login within the '
            f'connect timeout of {endpoint.timeout:g} s (xenon-grpc said: {message})')
    if isinstance(error, xe.InvalidCredentialException):
        how = f'with the key {endpoint.key}' if endpoint.key else 'with a password or the default keys'
        extra = (' (or its host key differs from the one in known_hosts)'
                 if endpoint.strict_host_key else '')
        return AuthenticationError(f'authentication failed for {endpoint.user}@{endpoint.host} '
                                   f'(port {endpoint.port}) {how}{extra}')
    return RemoteError(f'cannot connect to {endpoint.address}: {message}')


def _refused_host_key(endpoint: Endpoint) -> Optional[HostKeyError]:
    """The HostKeyError when known_hosts lacks the key Xenon's client checks, else None."""
    host, port = endpoint.host, endpoint.port
    first = first_key_types(host, port)
    if first is None:
        return None
    if not all(first.values()):
        return HostKeyError(f'the host key of {host}:{port} is not in {KNOWN_HOSTS} and '
                            f'strict_host_key is on: {how_to_accept(endpoint)}')
    others = sorted({kind for kind in first.values() if not kind.startswith('ecdsa-')})
    if others and offers_ecdsa(host, port, endpoint.timeout):
        return HostKeyError(
            f'the first key of {host}:{port} in {KNOWN_HOSTS} is its {", ".join(others)} '
            f'key, but xenon-grpc\'s SSH client checks the host\'s ECDSA key against the '
            f'first entry only, and strict_host_key is on: '
            f'{how_to_accept(endpoint, replace_keys_command(host, port))}')
    return None

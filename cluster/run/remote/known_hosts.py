"""What ``~/.ssh/known_hosts`` holds for a host, as xenon-grpc's SSH client reads it, and
the commands that make it hold the right keys.

xenon-grpc 3.0.1 bundles Apache MINA SSHD 2.2.0. Its client asks a server for the ECDSA
host key when it has one, and checks that key only against the *first* known_hosts entry
for the host's name. So a file whose first entry is the host's ed25519 key (``ssh`` may
record only that one, and ``ssh-keyscan`` prints its keys in whatever order they arrive)
refuses a host it knows. The commands here write the ECDSA keys first.
"""
from __future__ import annotations

import os
import shlex
from typing import Dict, Optional, Tuple

from ..shell import cmd

KNOWN_HOSTS = '~/.ssh/known_hosts'

#: names of this machine: Xenon looks a loopback host up under both (a tunnel too)
LOOPBACK = ('127.0.0.1', 'localhost')


def host_names(host: str) -> Tuple[str, ...]:
    """The names the host key must be known under: both loopback names for this machine."""
    return LOOPBACK if host in LOOPBACK or host == '::1' else (host,)


def _entry_name(name: str, port: int) -> str:
    return name if port == 22 else f'[{name}]:{port}'


def first_key_types(host: str, port: int,
                    path: str = KNOWN_HOSTS) -> Optional[Dict[str, Optional[str]]]:
    """For each name of the host, the key type of its first known_hosts entry (None for a
    name without one); None if ``ssh-keygen`` cannot tell."""
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        return {name: None for name in host_names(host)}
    found: Dict[str, Optional[str]] = {}
    for name in host_names(host):
        code, out, _ = cmd(['ssh-keygen', '-F', _entry_name(name, port), '-f', path],
                           timeout=10)
        if code in (124, 127):            # timed out, or no ssh-keygen
            return None
        entries = [line.split() for line in out.splitlines()
                   if line.strip() and not line.startswith('#')]
        found[name] = next((fields[1] for fields in entries if len(fields) >= 3), None)
    return found


def offers_ecdsa(host: str, port: int, timeout: float) -> bool:
    """True when ``ssh-keyscan`` gets an ECDSA host key from the server."""
    _, out, _ = cmd(['ssh-keyscan', '-T', str(max(1, int(timeout))), '-t', 'ecdsa', '-p',
                     str(port), host], timeout=timeout + 5)
    return ' ecdsa-' in out


def add_keys_command(host: str, port: int) -> str:
    """A shell command that appends the host's keys to known_hosts, ECDSA first (``sort``
    on the key type puts ``ecdsa-*`` before ``ssh-*``), and creates ``~/.ssh`` on a fresh
    account."""
    port_option = '' if port == 22 else f'-p {port} '
    names = ' '.join(shlex.quote(name) for name in host_names(host))
    return (f'mkdir -p ~/.ssh && chmod 700 ~/.ssh && ssh-keyscan {port_option}{names} '
            f'| sort -s -k2,2 >> {KNOWN_HOSTS}')


def replace_keys_command(host: str, port: int) -> str:
    """A shell command that removes the host's known_hosts entries and adds them again,
    ECDSA first."""
    remove = ' && '.join(f'ssh-keygen -R {shlex.quote(_entry_name(name, port))} '
                         f'-f {KNOWN_HOSTS}' for name in host_names(host))
    return f'{remove} && {add_keys_command(host, port)}'

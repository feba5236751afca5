"""Where a remote cluster is and how to log in: :class:`Endpoint`, from a profile or an address.

A profile with ``remote = ssh://user@host[:port][/workdir]`` names an endpoint; ``key``
is the private key file, ``qtype`` the batch system there (detected when absent),
``python`` the remote interpreter of function jobs and ``strict_host_key`` whether the
host key must be in ``~/.ssh/known_hosts``.

Passwords are never stored: a key's passphrase comes from ``CLUSTER_PASSPHRASE_<PROFILE>``
and a password from ``CLUSTER_PASSWORD_<PROFILE>`` (``<PROFILE>`` upper-cased, other
characters than letters and digits as ``_``), or from a prompt when stdin is a terminal.
"""
from __future__ import annotations

import getpass
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import ClusterError, ConfigError
from ...config_file import get_profile, parse_remote

logger = logging.getLogger(__name__)

#: seconds to set up and authenticate a connection
CONNECT_TIMEOUT = 10.0
DEFAULT_PORT = 22


class RemoteError(ClusterError):
    """A remote cluster cannot be reached, logged into or used."""


class HostUnreachableError(RemoteError):
    """Nothing answers SSH at the host and port."""


class AuthenticationError(RemoteError):
    """The remote side refused the key or password."""


class HostKeyError(RemoteError):
    """The host key is unknown (or changed) while strict host key checking is on."""


class RemotePythonError(RemoteError):
    """The remote Python cannot run function jobs (missing, or without dill)."""


class RemotePathError(RemoteError):
    """A remote file or directory cannot be written, read or deleted."""


def _env_name(prefix: str, profile: Optional[str]) -> str:
    return prefix + re.sub(r'[^A-Za-z0-9]', '_', (profile or 'default')).upper()


@dataclass(frozen=True)
class Endpoint:
    """One remote login: user, host, port, credentials and the settings of its jobs."""

    host: str
    user: str
    port: int = DEFAULT_PORT
    workdir: Optional[str] = None
    qtype: Optional[str] = None
    key: Optional[str] = None
    python: str = 'python3'
    strict_host_key: bool = True
    profile: Optional[str] = None
    #: seconds to connect and log in (None: :data:`CONNECT_TIMEOUT`)
    connect_timeout: Optional[float] = None
    #: a password or passphrase given in code (never stored, never shown)
    secret: Optional[str] = field(default=None, repr=False, compare=False)

    @property
    def timeout(self) -> float:
        """Seconds to connect and log in."""
        return float(self.connect_timeout or CONNECT_TIMEOUT)

    @property
    def location(self) -> str:
        """``host:port`` as Xenon's ssh and sftp adaptors want it."""
        return f'{self.host}:{self.port}'

    @property
    def address(self) -> str:
        """``user@host:port``, for messages."""
        return f'{self.user}@{self.host}:{self.port}'

    @property
    def pool_key(self) -> tuple:
        """Endpoints with the same key share one connection."""
        return (self.user, self.host, self.port, self.key, self.strict_host_key)

    def password(self, prompt: bool = True) -> Optional[str]:
        """The password from code, ``CLUSTER_PASSWORD_<PROFILE>``, or a prompt on a terminal."""
        if self.secret is not None and not self.key:
            return self.secret
        value = os.environ.get(_env_name('CLUSTER_PASSWORD_', self.profile))
        if value is not None:
            return value
        if prompt and sys.stdin is not None and sys.stdin.isatty():
            return getpass.getpass(f'password for {self.address}: ')
        return None

    def credential(self) -> Any:
        """The Xenon credential: the key file, else a password, else the default keys."""
        import xenon_backend as xb  # heavy: xenon_backend (grpc)
        if self.key:
            passphrase = self.secret if self.secret is not None else os.environ.get(
                _env_name('CLUSTER_PASSPHRASE_', self.profile), '')
            return xb.CertificateCredential(certfile=self.key, passphrase=passphrase,
                                            username=self.user)
        password = self.password(prompt=False)
        if password is not None:
            return xb.PasswordCredential(username=self.user, password=password)
        return xb.DefaultCredential(username=self.user)


def from_url(url: str, *, qtype: Optional[str] = None, key: Optional[str] = None,
             python: Optional[str] = None, strict_host_key: bool = True,
             profile: Optional[str] = None, **extra: Any) -> Endpoint:
    """An :class:`Endpoint` from ``ssh://user@host[:port][/workdir]`` and settings.

    >>> from_url('ssh://ann@hpc.example.org:2222/scratch/ann').address
    'ann@hpc.example.org:2222'
    """
    try:
        parts = parse_remote(url)
    except ValueError as exc:
        raise ConfigError(f'bad remote address: {exc}') from None
    return Endpoint(host=parts.host, user=parts.user or getpass.getuser(),
                    port=parts.port or DEFAULT_PORT, workdir=parts.workdir or None,
                    qtype=qtype, key=os.path.expanduser(key) if key else None,
                    python=python or 'python3', strict_host_key=bool(strict_host_key),
                    profile=profile, **extra)


def from_profile(name: str, **extra: Any) -> Optional[Endpoint]:
    """The endpoint of profile ``name``, or None when the profile is not remote."""
    connection = dict(get_profile(name).connection)
    url = connection.get('remote')
    if not url:
        return None
    return from_url(url, qtype=connection.get('qtype'), key=connection.get('key'),
                    python=connection.get('python'),
                    strict_host_key=connection.get('strict_host_key', True), profile=name,
                    **extra)


def resolve(profile: Optional[str] = None, remote: Any = None) -> Optional[Endpoint]:
    """The endpoint named by ``remote`` (an Endpoint or an address) or by a remote profile."""
    if isinstance(remote, Endpoint):
        return remote
    if remote:
        settings: dict = {}
        if profile and profile != 'default':
            connection = get_profile(profile).connection
            settings = {'qtype': connection.get('qtype'), 'key': connection.get('key'),
                        'python': connection.get('python'),
                        'strict_host_key': connection.get('strict_host_key', True)}
        return from_url(str(remote), profile=profile, **settings)
    if profile and profile != 'default':
        return from_profile(profile)
    return None

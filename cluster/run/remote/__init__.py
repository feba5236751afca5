"""Remote clusters over SSH through Xenon: the same Job API, files staged with SFTP.

A profile with ``remote = ssh://user@host[:port][/workdir]`` (see ``~cluster.example``)
makes :class:`cluster.Job` submit there: the batch commands of ``cluster.batch.slurm``
or ``cluster.batch.torque`` run through :meth:`Connection.run` (Xenon's ``ssh``
scheduler), and the job's files move through :class:`RemoteStore` (Xenon's ``sftp``
filesystem). Nothing here starts before a remote profile is used.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from .connection import Connection, close_all, connect, forget
from .endpoint import (AuthenticationError, Endpoint, HostKeyError, HostUnreachableError,
                       RemoteError, RemotePathError, RemotePythonError, from_profile, from_url,
                       resolve)
from .store import RemoteStore


def for_endpoint(endpoint: Endpoint,
                 qtype: Optional[str] = None) -> Tuple[RemoteStore, Any]:
    """(store, batch system) of ``endpoint``; one connection and one system per endpoint.
    The system is the endpoint's qtype, else ``qtype``, else the one detected there."""
    connection = connect(endpoint)
    return RemoteStore(connection, endpoint), connection.system(endpoint.qtype or qtype)


def lookup(profile: Optional[str] = None, remote: Any = None,
           qtype: Optional[str] = None) -> Optional[Tuple[RemoteStore, Any]]:
    """(store, system) when ``remote`` or ``profile`` names a remote cluster, else None."""
    endpoint = resolve(profile, remote)
    return None if endpoint is None else for_endpoint(endpoint, qtype)


__all__ = ['Endpoint', 'Connection', 'RemoteStore', 'connect', 'close_all', 'forget',
           'from_profile', 'from_url', 'resolve', 'for_endpoint', 'lookup', 'RemoteError',
           'HostUnreachableError', 'AuthenticationError', 'HostKeyError', 'RemotePythonError',
           'RemotePathError']

"""Where a job goes: the one place that turns ``qtype``, ``profile`` and ``remote`` into a
store for its files and the batch system that runs it."""
from __future__ import annotations

from typing import Any, Optional, Tuple

from .. import batch
from ..batch import BatchSystem
from . import remote
from .errors import JobError
from .storage import LocalStore, Store


def place(qtype: Optional[str] = None, profile: Optional[str] = None,
          address: Any = None) -> Tuple[Store, BatchSystem]:
    """(store, batch system): a remote pair when ``address`` (an ``ssh://`` address or an
    Endpoint) or the profile names a remote cluster, else the local store and ``qtype``'s
    system (detected when None; remotely, when neither it nor the profile says). A ``qtype``
    that contradicts the remote profile is refused."""
    found = remote.lookup(profile, address, qtype)
    if found is None:
        return LocalStore(), batch.get(qtype or batch.detect())
    store, system = found
    if qtype and qtype != system.name:
        raise JobError(f'qtype {qtype!r} given, but {system.endpoint.address} runs '
                       f'{system.name}, as the remote profile says; leave qtype out '
                       'or set it in the profile')
    return store, system

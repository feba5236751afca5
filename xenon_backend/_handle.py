"""What schedulers and filesystems share: a server-side id, the server, calls, closing."""
from __future__ import annotations

import logging
from typing import Any, Dict, Iterator, Optional

from . import _stubs
from .credentials import (CertificateCredential, Credential, CredentialMap, DefaultCredential,
                          KeytabCredential, PasswordCredential, from_proto, request_fields)
from .exceptions import XenonException
from .server import Server, default_server

logger = logging.getLogger(__name__)


def pick_credential(credential: Optional[Credential], **named: Any) -> Optional[Credential]:
    """One credential from ``credential=`` or the pyxenon-style ``password_credential=`` etc."""
    given = [value for value in named.values() if value is not None]
    if credential is not None:
        given.insert(0, credential)
    if len(given) > 1:
        raise TypeError('give one credential, not several')
    expected = {'password_credential': PasswordCredential,
                'certificate_credential': CertificateCredential,
                'default_credential': DefaultCredential, 'keytab_credential': KeytabCredential,
                'credential_map': CredentialMap}
    for name, value in named.items():
        if value is not None and not isinstance(value, expected[name]):
            raise TypeError(f'{name} must be a {expected[name].__name__}, '
                            f'not {type(value).__name__}')
    return given[0] if given else None


def create_request(kind: str, adaptor: str, location: str, properties: Optional[Dict[str, Any]],
                   credential: Optional[Credential]) -> Any:
    """A CreateSchedulerRequest or CreateFileSystemRequest."""
    pb2 = _stubs.pb2()
    message = pb2.CreateSchedulerRequest if kind == 'scheduler' else pb2.CreateFileSystemRequest
    props = {str(k): (str(v).lower() if isinstance(v, bool) else str(v))
             for k, v in (properties or {}).items()}
    return message(adaptor=adaptor, location=location or '', properties=props,
                   **request_fields(credential))


class Handle:
    """A scheduler or filesystem living in the xenon-grpc server."""

    _service = ''  # 'scheduler' or 'filesystem'
    _field = ''    # name of the handle field in requests

    def __init__(self, id: str, server: Optional[Server] = None,
                 timeout: Optional[float] = None) -> None:
        self.id = id
        self.server = server or default_server()
        self.timeout = timeout

    @classmethod
    def _server(cls, server: Optional[Server]) -> Server:
        return server or default_server()

    def _proto(self) -> Any:
        pb2 = _stubs.pb2()
        return (pb2.Scheduler if self._service == 'scheduler' else pb2.FileSystem)(id=self.id)

    def _call(self, rpc: str, request: Any = None, method: str = '',
              timeout: Optional[float] = -1.0) -> Any:
        return self.server.call(self._service, rpc, self._proto() if request is None else request,
                                method=f'{type(self).__name__}.{method or rpc}',
                                timeout=self.timeout if timeout == -1.0 else timeout)

    def _stream(self, rpc: str, request: Any, method: str) -> Iterator[Any]:
        return self.server.stream(self._service, rpc, request,
                                  method=f'{type(self).__name__}.{method}', timeout=self.timeout)

    def get_adaptor_name(self) -> str:
        """Name of the adaptor that made this object."""
        return self._call('getAdaptorName', method='get_adaptor_name').name

    def get_location(self) -> str:
        """The location it is connected to."""
        return self._call('getLocation', method='get_location').location

    def get_credential(self) -> Optional[Credential]:
        """The credential it was made with."""
        return from_proto(self._call('getCredential', method='get_credential'))

    def get_properties(self) -> Dict[str, str]:
        """The properties it was made with."""
        return dict(self._call('getProperties', method='get_properties').properties)

    def is_open(self) -> bool:
        """True while its connection is open."""
        return self._call('isOpen', method='is_open').value

    def close(self) -> None:
        """Close it; the server forgets it (over ssh one connection leaks: reuse instead)."""
        self._call('close', method='close')

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __eq__(self, other: object) -> bool:  # ids repeat across servers: compare both
        return (type(other) is type(self) and other.id == self.id  # type: ignore[attr-defined]
                and other.server is self.server)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.id, id(self.server)))

    def __repr__(self) -> str:
        return f'{type(self).__name__}(id={self.id!r})'


def create_remote(server: Server, kind: str, adaptor: str, location: str,
                  properties: Optional[Dict[str, Any]], credential: Optional[Credential],
                  timeout: Optional[float]) -> str:
    """Create a scheduler or filesystem in the server; its id. Errors name adaptor and place."""
    request = create_request(kind, adaptor, location, properties, credential)
    method = ('Scheduler' if kind == 'scheduler' else 'FileSystem') + '.create'
    try:
        return server.call(kind, 'create', request, method=method, timeout=timeout).id
    except XenonException as exc:
        user = getattr(credential, 'username', '') or ''
        where = f'{user}@{location}' if user and location else (location or '(default location)')
        exc.message = f'{exc.message} [adaptor {adaptor!r} at {where}]'
        exc.args = (f'{type(exc).__name__} in {method}: {exc.message}',)
        raise

"""Credentials for schedulers and filesystems; secrets never show in ``repr``.

``CertificateCredential`` names a private key file (ed25519 or ECDSA for ssh/sftp:
RSA keys fail against modern sshd with xenon-grpc 3.0.1). ``DefaultCredential`` uses
``~/.ssh`` of the user running the server. ``CredentialMap`` picks a credential per
host, with a fallback.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Union

from . import _stubs


@dataclass(frozen=True)
class PasswordCredential:
    """User name and password."""

    username: str
    password: str = field(repr=False)

    def to_proto(self) -> Any:
        return _stubs.pb2().PasswordCredential(username=self.username, password=self.password)


@dataclass(frozen=True)
class CertificateCredential:
    """A private key file (``certfile``), its passphrase if any, and the user name."""

    certfile: str
    passphrase: str = field(default='', repr=False)
    username: str = ''

    def to_proto(self) -> Any:
        return _stubs.pb2().CertificateCredential(certfile=str(self.certfile),
                                                  passphrase=self.passphrase,
                                                  username=self.username)


@dataclass(frozen=True)
class DefaultCredential:
    """The adaptor's default way to log in (ssh: keys and agent of the server's user)."""

    username: str = ''

    def to_proto(self) -> Any:
        return _stubs.pb2().DefaultCredential(username=self.username)


@dataclass(frozen=True)
class KeytabCredential:
    """A Kerberos keytab file and the user name."""

    username: str
    keytabfile: str

    def to_proto(self) -> Any:
        return _stubs.pb2().KeytabCredential(username=self.username,
                                             keytabfile=str(self.keytabfile))


UserCredential = Union[PasswordCredential, CertificateCredential, DefaultCredential,
                       KeytabCredential]

_FIELDS = {PasswordCredential: 'password_credential',
           CertificateCredential: 'certificate_credential',
           DefaultCredential: 'default_credential', KeytabCredential: 'keytab_credential'}


@dataclass(frozen=True)
class CredentialMap:
    """A credential per host (the keys are host names as in the location), and a fallback."""

    entries: Dict[str, UserCredential] = field(default_factory=dict)
    fallback: Optional[UserCredential] = None

    def to_proto(self) -> Any:
        pb2 = _stubs.pb2()
        entries = {host: pb2.UserCredential(**{_field_of(cred): cred.to_proto()})
                   for host, cred in self.entries.items()}
        extra = {_field_of(self.fallback): self.fallback.to_proto()} if self.fallback else {}
        return pb2.CredentialMap(entries=entries, **extra)


Credential = Union[UserCredential, CredentialMap]


def _field_of(credential: Any) -> str:
    try:
        return _FIELDS[type(credential)]
    except KeyError:
        raise TypeError(f'{type(credential).__name__} is not a credential; use one of '
                        f'{", ".join(c.__name__ for c in _FIELDS)} or CredentialMap') from None


def request_fields(credential: Optional[Credential]) -> Dict[str, Any]:
    """The ``credential`` oneof of a create request, as keyword arguments."""
    if credential is None:
        return {}
    if isinstance(credential, CredentialMap):
        return {'credential_map': credential.to_proto()}
    return {_field_of(credential): credential.to_proto()}


def from_proto(message: Any) -> Optional[Credential]:
    """The credential held by a ``GetCredentialResponse`` or ``UserCredential`` (or None)."""
    kind = message.WhichOneof('credential' if 'credential' in message.DESCRIPTOR.oneofs_by_name
                              else 'entry')
    return _convert(kind, getattr(message, kind)) if kind else None


def _convert(kind: str, value: Any) -> Credential:
    if kind == 'password_credential':
        return PasswordCredential(value.username, value.password)
    if kind == 'certificate_credential':
        return CertificateCredential(value.certfile, value.passphrase, value.username)
    if kind == 'default_credential':
        return DefaultCredential(value.username)
    if kind == 'keytab_credential':
        return KeytabCredential(value.username, value.keytabfile)
    entries = {host: from_proto(entry) for host, entry in value.entries.items()}
    fallback_kind = value.WhichOneof('fallback')
    fallback = _convert(fallback_kind, getattr(value, fallback_kind)) if fallback_kind else None
    return CredentialMap(entries, fallback)  # type: ignore[arg-type]

"""Certificates for mutual TLS between this client and the xenon-grpc server.

Made once per user with ``openssl`` into a 0700 directory
(``~/.local/share/cluster/xenon-tls`` unless ``$CLUSTER_XENON_TLS_DIR`` says otherwise):
a CA, a server certificate for ``localhost``/``127.0.0.1`` and a client certificate,
both signed by the CA. Keys are PKCS#8 PEM files with mode 0600 (xenon-grpc's netty
reads only PKCS#8). The server trusts exactly the clients whose certificate that CA
signed; the client trusts exactly a server whose certificate that CA signed.

A set made here carries a marker file (``.made-by-cluster``). An incomplete directory
with that marker is made again; one without it is the user's and is never deleted or
changed: :func:`ensure_certificates` refuses it, naming it. An existing empty directory
is filled in place.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .exceptions import XenonServerError
from .jar import user_data_dir

logger = logging.getLogger(__name__)

TLS_DIR_ENV = 'CLUSTER_XENON_TLS_DIR'
DAYS = 3650
MARKER = '.made-by-cluster'


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files of one certificate set."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / 'ca.crt'

    @property
    def server_cert(self) -> Path:
        return self.directory / 'server.crt'

    @property
    def server_key(self) -> Path:
        return self.directory / 'server.key'

    @property
    def client_cert(self) -> Path:
        return self.directory / 'client.crt'

    @property
    def client_key(self) -> Path:
        return self.directory / 'client.key'

    def complete(self) -> bool:
        return all(path.is_file() for path in (self.ca_cert, self.server_cert, self.server_key,
                                               self.client_cert, self.client_key))


def default_tls_dir() -> Path:
    """Directory of the user's certificate set."""
    if os.environ.get(TLS_DIR_ENV):
        return Path(os.environ[TLS_DIR_ENV]).expanduser()
    return user_data_dir() / 'xenon-tls'


def ensure_certificates(directory: Optional[Path] = None) -> TlsFiles:
    """The certificate set in ``directory``, made first if it is not complete.

    Raises :class:`XenonServerError` when the directory is not private to the user
    or ``openssl`` fails.
    """
    files = TlsFiles(Path(directory) if directory else default_tls_dir())
    if files.complete():
        _check_private(files.directory)
        return files
    _refuse_foreign(files.directory)
    parent = files.directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix='.xenon-tls-', dir=parent))  # mode 0700
    try:
        _make_set(work)
        _install_set(work, files)
    except Exception as exc:
        raise XenonServerError('ensure_certificates', None,
                               f'cannot make TLS certificates in {files.directory}: {exc}') from exc
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)  # the temporary directory made above
    logger.info('made TLS certificates for the xenon-grpc server in %s', files.directory)
    _check_private(files.directory)
    return files


def _refuse_foreign(directory: Path) -> None:
    """Refuse an incomplete directory that this package did not make (and that is not empty)."""
    if not directory.exists() or (directory / MARKER).is_file():
        return
    if not directory.is_dir():
        raise XenonServerError('ensure_certificates', None,
                               f'{directory} is not a directory; the TLS certificates need one '
                               f'(set {TLS_DIR_ENV} to another path)')
    entries = sorted(os.listdir(directory))
    if entries:
        shown = ', '.join(entries[:5]) + (', ...' if len(entries) > 5 else '')
        raise XenonServerError('ensure_certificates', None,
                               f'{directory} holds files ({shown}) but no complete certificate '
                               f'set, and cluster did not make it: refusing to touch it. '
                               f'Remove it yourself, or set {TLS_DIR_ENV} to a new or empty '
                               f'directory')


def _install_set(work: Path, files: TlsFiles) -> None:
    """Move the set made in ``work`` to its place (replacing only a set made here)."""
    target = files.directory
    if target.is_dir() and not os.listdir(target):  # the user's empty directory: fill it
        for entry in sorted(os.listdir(work)):
            os.rename(work / entry, target / entry)
        return
    if target.exists() and (target / MARKER).is_file() and not files.complete():
        shutil.rmtree(target)  # an incomplete set of our own
    try:
        os.rename(work, target)
    except OSError:
        if not files.complete():  # somebody else made one meanwhile: use theirs
            raise


def _check_private(directory: Path) -> None:
    info = directory.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise XenonServerError('ensure_certificates', None,
                               f'{directory} must be owned by you with mode 0700 '
                               f'(it is {oct(info.st_mode & 0o777)}): it holds private keys')


def _openssl(*args: str, timeout: float = 120) -> None:
    """Run ``openssl args`` (no shell); a failure, a missing openssl or a timeout raises."""
    try:
        proc = subprocess.run(['openssl', *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
    except FileNotFoundError:
        raise XenonServerError('openssl', None, 'openssl is not installed: '
                                                'apt-get install openssl') from None
    except subprocess.TimeoutExpired:
        raise XenonServerError('openssl', None, f'openssl {args[0]} did not finish within '
                                                f'{timeout:.0f} s') from None
    if proc.returncode != 0:
        raise XenonServerError('openssl', None, f'openssl {args[0]} failed with exit code '
                                                f'{proc.returncode}: '
                                                f'{(proc.stderr or proc.stdout).strip()}')


def _make_set(work: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        for name in ('ca', 'server', 'client'):
            _openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
                     '-out', str(work / f'{name}.key'))
        _openssl('req', '-x509', '-new', '-key', str(work / 'ca.key'), '-sha256',
                 '-days', str(DAYS), '-subj', '/CN=cluster xenon-grpc CA',
                 '-addext', 'basicConstraints=critical,CA:TRUE',
                 '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
                 '-out', str(work / 'ca.crt'))
        names = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1']
        host = socket.gethostname()
        if host and host != 'localhost':
            names.append(f'DNS:{host}')
        _sign(work, 'server', 'localhost', 'serverAuth', ','.join(names))
        _sign(work, 'client', f'cluster client {os.getuid()}', 'clientAuth', None)
        for leftover in work.glob('*.csr'):
            leftover.unlink()
        for leftover in work.glob('*.ext'):
            leftover.unlink()
        (work / 'ca.key').unlink()  # nothing more is ever signed with it
        (work / MARKER).write_text('made by cluster (xenon_backend.tls); may be made again\n')
    finally:
        os.umask(old_umask)


def _sign(work: Path, name: str, common_name: str, usage: str, alt_names: Optional[str]) -> None:
    csr, ext = work / f'{name}.csr', work / f'{name}.ext'
    lines = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment',
             f'extendedKeyUsage={usage}']
    if alt_names:
        lines.append(f'subjectAltName={alt_names}')
    ext.write_text('\n'.join(lines) + '\n')
    _openssl('req', '-new', '-key', str(work / f'{name}.key'), '-subj', f'/CN={common_name}',
             '-out', str(csr))
    _openssl('x509', '-req', '-in', str(csr), '-CA', str(work / 'ca.crt'),
             '-CAkey', str(work / 'ca.key'), '-set_serial', str(int.from_bytes(os.urandom(8), 'big')),
             '-sha256', '-days', str(DAYS), '-extfile', str(ext), '-out', str(work / f'{name}.crt'))

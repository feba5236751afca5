"""``FileSystem``: files on a local or remote store through a Xenon filesystem adaptor.

>>> with FileSystem.create('file') as fs:               # doctest: +SKIP
...     fs.write_to_file(Path('/tmp/hello.txt'), [b'hello\\n'])
...     b''.join(fs.read_from_file(Path('/tmp/hello.txt')))
b'hello\\n'

Paths are :class:`~xenon_backend.messages.Path` objects or strings; a relative path
is taken from the filesystem's working directory.

Calls on one filesystem are serialised: xenon-grpc 3.0.1's ``sftp`` adaptor shares one
SFTP client per filesystem and loses replies when two calls overlap ("Failed to retrieve
attributes", then "client is closed" for every later call). Separate filesystems still
run in parallel. So that no call waits on a half-read stream, ``list`` and
``read_from_file`` receive their whole answer before they yield.
"""
from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Dict, Iterable, Iterator, List, Optional

from . import _stubs
from ._handle import Handle, create_remote, pick_credential
from .credentials import Credential
from .messages import (CopyMode, CopyOperation, CopyStatus, FileSystemAdaptorDescription, Path,
                       PathAttributes, PathLike, PosixFilePermission, to_path_proto)
from .server import Server

logger = logging.getLogger(__name__)

CHUNK = 1 << 16
#: the ``file`` filesystem of each server, for download and upload
_LOCAL: 'weakref.WeakKeyDictionary[Server, FileSystem]' = weakref.WeakKeyDictionary()
_LOCAL_GUARD = threading.Lock()
WAIT_SLICE_MS = 60_000  # a wait without limit asks the server in slices of this


class FileSystem(Handle):
    """A filesystem open in the xenon-grpc server (``file``, ``sftp``, ``ftp``, ``webdav``, ``s3``)."""

    _service = 'filesystem'
    _field = 'filesystem'

    def __init__(self, id: str, server: Optional[Server] = None,
                 timeout: Optional[float] = None) -> None:
        super().__init__(id, server, timeout)
        self._serial = self.server.filesystem_lock(self.id)

    def _call(self, rpc: str, request: Any = None, method: str = '',
              timeout: Optional[float] = -1.0) -> Any:
        with self._serial:
            return super()._call(rpc, request, method, timeout)

    def _stream(self, rpc: str, request: Any, method: str) -> Iterator[Any]:
        with self._serial:
            return iter(list(super()._stream(rpc, request, method)))

    # -- the adaptors and the filesystems the server holds ---------------------------------
    @staticmethod
    def get_adaptor_names(server: Optional[Server] = None) -> List[str]:
        """Names of the filesystem adaptors."""
        return list(FileSystem._server(server).call(
            'filesystem', 'getAdaptorNames', _stubs.pb2().Empty(),
            method='FileSystem.get_adaptor_names').name)

    @staticmethod
    def get_adaptor_descriptions(server: Optional[Server] = None
                                 ) -> List[FileSystemAdaptorDescription]:
        """Descriptions of all filesystem adaptors."""
        reply = FileSystem._server(server).call(
            'filesystem', 'getAdaptorDescriptions', _stubs.pb2().Empty(),
            method='FileSystem.get_adaptor_descriptions')
        return [FileSystemAdaptorDescription.from_proto(d) for d in reply.descriptions]

    @staticmethod
    def get_adaptor_description(name: str, server: Optional[Server] = None
                                ) -> FileSystemAdaptorDescription:
        """Description of the adaptor ``name``."""
        reply = FileSystem._server(server).call(
            'filesystem', 'getAdaptorDescription', _stubs.pb2().AdaptorName(name=name),
            method='FileSystem.get_adaptor_description')
        return FileSystemAdaptorDescription.from_proto(reply)

    @classmethod
    def create(cls, adaptor: str, location: str = '', properties: Optional[Dict[str, Any]] = None,
               credential: Optional[Credential] = None, *, password_credential: Any = None,
               certificate_credential: Any = None, default_credential: Any = None,
               keytab_credential: Any = None, credential_map: Any = None,
               server: Optional[Server] = None, timeout: Optional[float] = None) -> 'FileSystem':
        """Open a filesystem with ``adaptor`` at ``location`` (e.g. ``'sftp'``, ``'host:22'``).

        ``properties`` are the adaptor's ``xenon.adaptors.filesystems.<adaptor>.*``
        settings; ``timeout`` (seconds) bounds every call made through this object.
        """
        chosen = pick_credential(credential, password_credential=password_credential,
                                 certificate_credential=certificate_credential,
                                 default_credential=default_credential,
                                 keytab_credential=keytab_credential, credential_map=credential_map)
        server = cls._server(server)
        handle = create_remote(server, 'filesystem', adaptor, location, properties, chosen, timeout)
        logger.debug('opened %s filesystem %s', adaptor, handle)
        return cls(handle, server, timeout)

    @classmethod
    def list_file_systems(cls, server: Optional[Server] = None) -> List['FileSystem']:
        """All filesystems open in the server."""
        server = cls._server(server)
        reply = server.call('filesystem', 'listFileSystems', _stubs.pb2().Empty(),
                            method='FileSystem.list_file_systems')
        return [cls(fs.id, server) for fs in reply.filesystems]

    @classmethod
    def local_file_systems(cls, server: Optional[Server] = None) -> List['FileSystem']:
        """One ``file`` filesystem per local drive (one, ``/``, on Unix)."""
        server = cls._server(server)
        reply = server.call('filesystem', 'localFileSystems', _stubs.pb2().Empty(),
                            method='FileSystem.local_file_systems')
        return [cls(fs.id, server) for fs in reply.filesystems]

    # -- requests ---------------------------------------------------------------------------
    def _path_request(self, path: PathLike) -> Any:
        return _stubs.pb2().PathRequest(filesystem=self._proto(), path=to_path_proto(path))

    def _op_request(self, operation: CopyOperation) -> Any:
        return _stubs.pb2().CopyOperationRequest(filesystem=self._proto(),
                                                 copy_operation=operation.to_proto())

    # -- paths ------------------------------------------------------------------------------
    def create_directories(self, path: PathLike) -> None:
        """Make a directory and its missing parents; fails if it exists."""
        self._call('createDirectories', self._path_request(path), 'create_directories')

    def create_directory(self, path: PathLike) -> None:
        """Make one directory; :class:`PathAlreadyExistsException` if it exists."""
        self._call('createDirectory', self._path_request(path), 'create_directory')

    def create_file(self, path: PathLike) -> None:
        """Make an empty file; :class:`PathAlreadyExistsException` if it exists."""
        self._call('createFile', self._path_request(path), 'create_file')

    def create_symbolic_link(self, link: PathLike, target: PathLike) -> None:
        """Make ``link`` point to ``target``."""
        request = _stubs.pb2().CreateSymbolicLinkRequest(
            filesystem=self._proto(), link=to_path_proto(link), target=to_path_proto(target))
        self._call('createSymbolicLink', request, 'create_symbolic_link')

    def read_symbolic_link(self, path: PathLike) -> Path:
        """The target of the link ``path``."""
        return Path.from_proto(self._call('readSymbolicLink', self._path_request(path),
                                          'read_symbolic_link'))

    def exists(self, path: PathLike) -> bool:
        """True when ``path`` exists."""
        return self._call('exists', self._path_request(path), 'exists').value

    def get_attributes(self, path: PathLike) -> PathAttributes:
        """Type, size, owner, permissions and times of ``path``."""
        return PathAttributes.from_proto(self._call('getAttributes', self._path_request(path),
                                                    'get_attributes'))

    def list(self, dir: PathLike, recursive: bool = False) -> Iterator[PathAttributes]:
        """The entries of directory ``dir`` (and below it with ``recursive``)."""
        request = _stubs.pb2().ListRequest(filesystem=self._proto(), dir=to_path_proto(dir),
                                           recursive=recursive)
        for entry in self._stream('list', request, 'list'):
            yield PathAttributes.from_proto(entry)

    def rename(self, source: PathLike, target: PathLike) -> None:
        """Move ``source`` to ``target``, which must not exist."""
        request = _stubs.pb2().RenameRequest(filesystem=self._proto(),
                                             source=to_path_proto(source),
                                             target=to_path_proto(target))
        self._call('rename', request, 'rename')

    def delete(self, path: PathLike, recursive: bool = False) -> None:
        """Remove ``path``; a non-empty directory only with ``recursive``."""
        request = _stubs.pb2().DeleteRequest(filesystem=self._proto(), path=to_path_proto(path),
                                             recursive=recursive)
        self._call('delete', request, 'delete')

    def set_posix_file_permissions(self, path: PathLike,
                                   permissions: Iterable[PosixFilePermission]) -> None:
        """Set exactly these permissions on ``path`` (see :meth:`PosixFilePermission.from_mode`)."""
        request = _stubs.pb2().SetPosixFilePermissionsRequest(
            filesystem=self._proto(), path=to_path_proto(path),
            permissions=sorted(int(p) for p in permissions))
        self._call('setPosixFilePermissions', request, 'set_posix_file_permissions')

    def get_working_directory(self) -> Path:
        """The directory relative paths start from."""
        return Path.from_proto(self._call('getWorkingDirectory', method='get_working_directory'))

    def set_working_directory(self, path: PathLike) -> None:
        """Change the directory relative paths start from."""
        self._call('setWorkingDirectory', self._path_request(path), 'set_working_directory')

    def get_path_separator(self) -> str:
        """The separator of path components (``/``)."""
        return self._call('getPathSeparator', method='get_path_separator').separator

    # -- contents ---------------------------------------------------------------------------
    def read_from_file(self, path: PathLike) -> Iterator[bytes]:
        """The bytes of the file ``path``, chunk by chunk."""
        for chunk in self._stream('readFromFile', self._path_request(path), 'read_from_file'):
            yield chunk.buffer

    def write_to_file(self, path: PathLike, data_stream: Iterable[bytes],
                      size: Optional[int] = None) -> None:
        """Write a new file from an iterable of bytes (read in a gRPC thread; it may block).

        The file must not exist. ``size`` is needed by adaptors that want the size first
        (see ``needs_size_beforehand`` in the adaptor description). ``data_stream`` must
        not call this filesystem: calls on it wait for this one (read such data first).
        """
        pb2 = _stubs.pb2()

        def requests() -> Iterator[Any]:
            yield pb2.WriteToFileRequest(filesystem=self._proto(), path=to_path_proto(path),
                                         size=size or 0)
            for chunk in data_stream:
                for start in range(0, len(chunk), CHUNK):
                    yield pb2.WriteToFileRequest(buffer=bytes(chunk[start:start + CHUNK]))

        self._call('writeToFile', requests(), 'write_to_file')

    def append_to_file(self, path: PathLike, data_stream: Iterable[bytes]) -> None:
        """Append an iterable of bytes to the existing file ``path``."""
        pb2 = _stubs.pb2()

        def requests() -> Iterator[Any]:
            yield pb2.AppendToFileRequest(filesystem=self._proto(), path=to_path_proto(path))
            for chunk in data_stream:
                for start in range(0, len(chunk), CHUNK):
                    yield pb2.AppendToFileRequest(buffer=bytes(chunk[start:start + CHUNK]))

        self._call('appendToFile', requests(), 'append_to_file')

    def read_bytes(self, path: PathLike) -> bytes:
        """The whole content of the file ``path`` (xenon-grpc 3.0.1 sends a file as one
        message: for a big file use :meth:`download`)."""
        return b''.join(self.read_from_file(path))

    def download(self, path: PathLike, local_path: PathLike) -> int:
        """Copy the file ``path`` to the new file ``local_path`` on the server's machine.

        The server copies it with its own ``file`` filesystem, in a stream: the data never
        passes through this process, whatever its size. ``local_path`` must not exist.
        Returns the bytes copied; a failed copy raises its exception.
        """
        return self._copy_file(path, self._local(), local_path)

    def upload(self, local_path: PathLike, path: PathLike) -> int:
        """Copy the file ``local_path`` of the server's machine to the new file ``path``
        here, in a stream in the server (the counterpart of :meth:`download`)."""
        return self._local()._copy_file(local_path, self, path, hold=self._serial)

    def _local(self) -> 'FileSystem':
        """The server's ``file`` filesystem (one per server, made on first use)."""
        with _LOCAL_GUARD:
            local = _LOCAL.get(self.server)
            if local is None:
                local = _LOCAL[self.server] = FileSystem.create('file', server=self.server,
                                                                timeout=self.timeout)
            return local

    def _copy_file(self, source: PathLike, target_fs: 'FileSystem', target: PathLike,
                   hold: Optional[Any] = None) -> int:
        """Copy one file to ``target_fs`` and wait for it, holding the lock of the sftp side
        throughout (the copy uses its client)."""
        request = _stubs.pb2().CopyRequest(
            filesystem=self._proto(), source=to_path_proto(source),
            destination_filesystem=target_fs._proto(), destination=to_path_proto(target),
            mode=int(CopyMode.CREATE), recursive=False)
        with hold or self._serial:
            operation = CopyOperation(Handle._call(self, 'copy', request, 'copy').id)
            while True:
                status = CopyStatus.from_proto(Handle._call(self, 'waitUntilDone', (
                    _stubs.pb2().WaitUntilDoneRequest(
                        filesystem=self._proto(), copy_operation=operation.to_proto(),
                        timeout=WAIT_SLICE_MS)), 'wait_until_done', timeout=None))
                if status.done:
                    break
        if status.error is not None:
            raise status.error
        return status.bytes_copied

    def write_bytes(self, path: PathLike, data: bytes) -> None:
        """Write ``data`` to the new file ``path``."""
        self.write_to_file(path, [data], size=len(data))

    # -- copies -----------------------------------------------------------------------------
    def copy(self, source: PathLike, destination_filesystem: 'FileSystem',
             destination: PathLike, mode: CopyMode = CopyMode.CREATE,
             recursive: bool = False) -> CopyOperation:
        """Start copying ``source`` to ``destination`` on ``destination_filesystem``.

        Returns at once; follow it with :meth:`get_status` or :meth:`wait_until_done`.
        The copy runs in the server and uses both filesystems meanwhile: over ``sftp``,
        wait for it before other calls on them.
        """
        request = _stubs.pb2().CopyRequest(
            filesystem=self._proto(), source=to_path_proto(source),
            destination_filesystem=destination_filesystem._proto(),
            destination=to_path_proto(destination), mode=int(mode), recursive=recursive)
        return CopyOperation(self._call('copy', request, 'copy').id)

    def get_status(self, copy_operation: CopyOperation) -> CopyStatus:
        """Progress of a copy."""
        return CopyStatus.from_proto(Handle._call(self, 'getStatus',
                                                  self._op_request(copy_operation), 'get_status'))

    def cancel(self, copy_operation: CopyOperation) -> CopyStatus:
        """Stop a copy."""
        return CopyStatus.from_proto(Handle._call(self, 'cancel',
                                                  self._op_request(copy_operation), 'cancel'))

    def wait_until_done(self, copy_operation: CopyOperation, timeout: int = 0) -> CopyStatus:
        """Wait for a copy to end, at most ``timeout`` milliseconds (0: no limit).

        A failed copy is reported in the status (``error_type``, ``error``), not raised.
        (xenon-grpc 3.0.1 returns at once for a timeout of 0; here 0 really waits.)
        """
        while True:
            request = _stubs.pb2().WaitUntilDoneRequest(
                filesystem=self._proto(), copy_operation=copy_operation.to_proto(),
                timeout=timeout or WAIT_SLICE_MS)
            status = CopyStatus.from_proto(Handle._call(self, 'waitUntilDone', request,
                                                        'wait_until_done', timeout=None))
            if status.done or timeout:
                return status

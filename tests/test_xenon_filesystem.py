"""xenon_backend.FileSystem against the real xenon-grpc server, with the ``file`` adaptor."""
from __future__ import annotations

import os
import stat

import pytest

from xenon_backend import exceptions as xe
from xenon_backend.messages import CopyMode, CopyStatus, Path, PosixFilePermission

pytest_plugins = ['xenon_fixtures']
pytestmark = pytest.mark.xenon


@pytest.fixture
def base(tmp_path):
    return Path(str(tmp_path))


def read(fs, path):
    return b''.join(fs.read_from_file(path))


def test_adaptors_are_listed_and_described(xb):
    names = xb.FileSystem.get_adaptor_names()
    assert {'file', 'sftp', 'ftp', 'webdav', 's3'} <= set(names)
    descriptions = xb.FileSystem.get_adaptor_descriptions()
    assert [d.name for d in descriptions] == names
    sftp = xb.FileSystem.get_adaptor_description('sftp')
    assert sftp.supported_locations == ['host[:port][/workdir]']
    assert 'xenon.adaptors.filesystems.sftp.strictHostKeyChecking' in \
        {p.name for p in sftp.supported_properties}
    with pytest.raises(xe.UnknownAdaptorException, match='nope'):
        xb.FileSystem.get_adaptor_description('nope')


def test_create_close_and_list_file_systems(xb, tmp_path):
    with xb.FileSystem.create('file', str(tmp_path)) as fs:
        assert fs.is_open()
        assert fs in xb.FileSystem.list_file_systems()
        assert fs.get_adaptor_name() == 'file'
        assert fs.get_location() == str(tmp_path)
        assert fs.get_properties() == {}
        assert isinstance(fs.get_credential(), xb.DefaultCredential)
        assert fs.get_working_directory() == Path(str(tmp_path))
    assert fs not in xb.FileSystem.list_file_systems()
    with pytest.raises(xe.XenonException):
        fs.exists('/')
    local = xb.FileSystem.local_file_systems()
    assert [f.get_working_directory() for f in local] == [Path('/')]


def test_streamed_write_append_and_read(file_fs, base):
    target = base / 'data.bin'
    payload = os.urandom(300_000)  # several gRPC chunks
    file_fs.write_to_file(target, (payload[i:i + 70_000] for i in range(0, len(payload), 70_000)))
    assert read(file_fs, target) == payload
    file_fs.append_to_file(target, [b'tail-1', b'tail-2'])
    assert open(target, 'rb').read() == payload + b'tail-1tail-2'
    file_fs.write_bytes(base / 'small.txt', b'hello\n')
    assert file_fs.read_bytes(base / 'small.txt') == b'hello\n'
    with pytest.raises(xe.PathAlreadyExistsException):
        file_fs.write_to_file(target, [b'clobber'])
    assert open(target, 'rb').read().endswith(b'tail-2')  # nothing lost


def test_directories_files_and_listing(file_fs, base):
    file_fs.create_directories(base / 'a' / 'b' / 'c')
    file_fs.create_directory(base / 'd')
    file_fs.create_file(base / 'a' / 'f.txt')
    file_fs.create_file(base / '.hidden')
    assert file_fs.exists(base / 'a' / 'b' / 'c') and not file_fs.exists(base / 'zz')
    top = {entry.path for entry in file_fs.list(base)}
    assert top == {base / 'a', base / 'd', base / '.hidden'}
    everything = {entry.path for entry in file_fs.list(base, recursive=True)}
    assert everything == top | {base / 'a' / 'b', base / 'a' / 'b' / 'c', base / 'a' / 'f.txt'}
    hidden = [e for e in file_fs.list(base) if e.path.is_hidden()]
    assert [e.path.name for e in hidden] == ['.hidden'] and hidden[0].is_hidden
    with pytest.raises(xe.PathAlreadyExistsException):
        file_fs.create_directory(base / 'd')
    with pytest.raises(xe.PathAlreadyExistsException):
        file_fs.create_file(base / 'a' / 'f.txt')


def test_attributes_and_permissions(file_fs, base):
    target = base / 'x.sh'
    file_fs.write_bytes(target, b'#!/bin/sh\n')
    file_fs.set_posix_file_permissions(target, PosixFilePermission.from_mode(0o750))
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o750
    attributes = file_fs.get_attributes(target)
    assert attributes.path == target and attributes.size == 10
    assert attributes.is_regular and not attributes.is_directory and not attributes.is_symbolic_link
    assert PosixFilePermission.to_mode(attributes.permissions) == 0o750
    assert attributes.owner == __import__('pwd').getpwuid(os.getuid()).pw_name
    assert attributes.last_modified_time > 0
    assert file_fs.get_attributes(base).is_directory


def test_symbolic_links(file_fs, base):
    file_fs.write_bytes(base / 'real.txt', b'x')
    file_fs.create_symbolic_link(base / 'link', base / 'real.txt')
    assert os.readlink(base / 'link') == str(base / 'real.txt')
    assert file_fs.read_symbolic_link(base / 'link') == base / 'real.txt'
    assert file_fs.get_attributes(base / 'link').is_symbolic_link
    with pytest.raises(xe.InvalidPathException, match='Not a symbolic link'):
        file_fs.read_symbolic_link(base / 'real.txt')


def test_rename_and_recursive_delete(file_fs, base):
    file_fs.create_directories(base / 'tree' / 'sub')
    file_fs.write_bytes(base / 'tree' / 'sub' / 'f', b'1')
    file_fs.write_bytes(base / 'other', b'2')
    with pytest.raises(xe.PathAlreadyExistsException):
        file_fs.rename(base / 'other', base / 'tree')
    file_fs.rename(base / 'tree', base / 'moved')
    assert not os.path.exists(base / 'tree') and os.path.exists(base / 'moved' / 'sub' / 'f')
    with pytest.raises(xe.DirectoryNotEmptyException):
        file_fs.delete(base / 'moved')
    file_fs.delete(base / 'moved', recursive=True)
    assert not os.path.exists(base / 'moved')
    with pytest.raises(xe.NoSuchPathException):
        file_fs.delete(base / 'moved')


def test_copy_wait_status_and_modes(file_fs, base):
    file_fs.write_bytes(base / 'src', b'source bytes')
    operation = file_fs.copy(base / 'src', file_fs, base / 'dst')
    status = file_fs.wait_until_done(operation, 10_000)
    assert status.done and status.error is None and status.error_type == CopyStatus.ErrorType.NONE
    assert status.copy_operation == operation and status.bytes_copied == 12
    assert open(base / 'dst', 'rb').read() == b'source bytes'
    with pytest.raises(xe.NoSuchCopyException):  # forgotten once its final status was returned
        file_fs.get_status(operation)

    file_fs.write_bytes(base / 'src2', b'new')
    refused = file_fs.wait_until_done(file_fs.copy(base / 'src2', file_fs, base / 'dst'))
    assert refused.error_type == CopyStatus.ErrorType.ALREADY_EXISTS
    assert isinstance(refused.error, xe.PathAlreadyExistsException)
    assert open(base / 'dst', 'rb').read() == b'source bytes'  # not clobbered
    file_fs.wait_until_done(file_fs.copy(base / 'src2', file_fs, base / 'dst', CopyMode.IGNORE))
    assert open(base / 'dst', 'rb').read() == b'source bytes'
    file_fs.wait_until_done(file_fs.copy(base / 'src2', file_fs, base / 'dst', CopyMode.REPLACE))
    assert open(base / 'dst', 'rb').read() == b'new'

    missing = file_fs.wait_until_done(file_fs.copy(base / 'nope', file_fs, base / 'x'))
    assert missing.error_type == CopyStatus.ErrorType.NOT_FOUND
    assert isinstance(missing.error, xe.NoSuchPathException)


def test_recursive_copy_and_get_status_while_running(file_fs, base):
    file_fs.create_directories(base / 'in' / 'deep')
    file_fs.write_bytes(base / 'in' / 'deep' / 'f', b'deep')
    operation = file_fs.copy(base / 'in', file_fs, base / 'out', recursive=True)
    status = file_fs.get_status(operation)
    assert status.copy_operation == operation
    if not status.done:
        status = file_fs.wait_until_done(operation)
    assert status.error is None
    assert open(base / 'out' / 'deep' / 'f', 'rb').read() == b'deep'


def test_cancel_a_copy(file_fs, base):
    big = base / 'big'
    with open(big, 'wb') as handle:
        handle.truncate(300 << 20)  # sparse: quick to make, slow enough to copy
    operation = file_fs.copy(big, file_fs, base / 'big.copy')
    status = file_fs.cancel(operation)
    assert status.copy_operation == operation
    assert status.done and not status.running
    # 3.0.1 reports the cancel as error type XENON naming CopyCancelledException
    assert isinstance(status.error, xe.CopyCancelledException) or status.bytes_copied == 300 << 20


def test_working_directory_and_separator(xb, tmp_path):
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'rel.txt').write_text('relative')
    with xb.FileSystem.create('file') as fs:
        fs.set_working_directory(str(tmp_path / 'sub'))
        assert fs.get_working_directory() == Path(str(tmp_path / 'sub'))
        assert fs.read_bytes('rel.txt') == b'relative'
        assert fs.get_path_separator() == '/'
        with pytest.raises(xe.XenonException):  # 3.0.1 answers UNKNOWN without details
            fs.set_working_directory(str(tmp_path / 'missing'))
        assert fs.get_working_directory() == Path(str(tmp_path / 'sub'))


def test_missing_paths_raise_no_such_path(file_fs, base):
    for call in (lambda: file_fs.get_attributes(base / 'missing'),
                 lambda: file_fs.read_bytes(base / 'missing'),
                 lambda: file_fs.append_to_file(base / 'missing', [b'x']),
                 lambda: list(file_fs.list(base / 'missing')),
                 lambda: file_fs.set_posix_file_permissions(base / 'missing', [])):
        with pytest.raises(xe.NoSuchPathException, match='missing'):
            call()

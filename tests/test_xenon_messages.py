"""Unit tests of xenon_backend's messages, credentials and exception mapping (no server)."""
from __future__ import annotations

import grpc
import pytest

from xenon_backend import exceptions as xe
from xenon_backend.credentials import (CertificateCredential, CredentialMap, DefaultCredential,
                                       KeytabCredential, PasswordCredential, from_proto,
                                       request_fields)
from xenon_backend.messages import (CopyMode, CopyStatus, JobDescription, JobStatus, Path,
                                    PosixFilePermission, PropertyType, QueueStatus)
from xenon_helpers import require, xenon_missing


def stubs():
    require('xenon stubs', xenon_missing(), 'run python -m xenon_backend.build')
    from xenon_backend import _stubs
    return _stubs.pb2()


class FakeRpcError(grpc.RpcError):
    """Stands in for a grpc error in these unit tests; the real ones are in the server tests."""

    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


def test_path_is_a_pure_posix_path_that_knows_hidden_names():
    path = Path('/data') / '.cache'
    assert isinstance(path, Path)
    assert path.is_hidden()
    assert not (path / 'x.txt').is_hidden()
    assert path.parent == Path('/data') and str(path) == '/data/.cache'


def test_permissions_convert_to_and_from_octal_modes():
    perms = PosixFilePermission.from_mode(0o751)
    assert perms == {PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                     PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.GROUP_READ,
                     PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.OTHERS_EXECUTE}
    assert PosixFilePermission.to_mode(perms) == 0o751
    assert PosixFilePermission.to_mode(PosixFilePermission.from_mode(0)) == 0


@pytest.mark.parametrize('ours, theirs', [
    (PosixFilePermission, 'PosixFilePermission'),
    (CopyMode, 'CopyRequest.CopyMode'),
    (CopyStatus.ErrorType, 'CopyStatus.ErrorType'),
    (JobStatus.ErrorType, 'JobStatus.ErrorType'),
    (QueueStatus.ErrorType, 'QueueStatus.ErrorType'),
    (PropertyType, 'PropertyDescription.Type'),
])
def test_enums_equal_those_of_the_proto(ours, theirs):
    pb2 = stubs()
    names = theirs.split('.')
    if len(names) == 1:
        values = pb2.DESCRIPTOR.enum_types_by_name[names[0]].values_by_name
    else:
        values = pb2.DESCRIPTOR.message_types_by_name[names[0]].enum_types_by_name[
            names[1]].values_by_name
    assert {name: value.number for name, value in values.items()} == \
        {member.name: member.value for member in ours}


def test_job_description_has_every_field_of_the_proto():
    pb2 = stubs()
    proto_fields = set(pb2.JobDescription.DESCRIPTOR.fields_by_name)
    assert proto_fields == set(JobDescription.__dataclass_fields__)
    description = JobDescription(executable='/bin/echo', arguments=['a', 1],
                                 working_directory=Path('/tmp'), environment={'A': 1},
                                 queue_name='multi', max_runtime=5, stdout='o', stderr='e',
                                 stdin='i', name='n', max_memory=100, scheduler_arguments=['-x'],
                                 tasks=2, cores_per_task=3, tasks_per_node=1, start_per_task=True,
                                 start_time='now', temp_space=7)
    message = description.to_proto()
    assert list(message.arguments) == ['a', '1'] and message.working_directory == '/tmp'
    assert dict(message.environment) == {'A': '1'} and message.start_per_task
    assert (message.tasks, message.cores_per_task, message.temp_space) == (2, 3, 7)


def test_secrets_stay_out_of_repr():
    credential = PasswordCredential('alice', 'hunter2-secret')
    keyed = CertificateCredential('/k', passphrase='pass-secret', username='bob')
    mapped = CredentialMap({'host': credential}, fallback=keyed)
    for text in (repr(credential), str(credential), repr(keyed), repr(mapped)):
        assert 'secret' not in text
    assert 'alice' in repr(credential)


def test_credentials_round_trip_through_their_messages():
    pb2 = stubs()
    mapped = CredentialMap({'a': PasswordCredential('u', 'p'), 'b': DefaultCredential('v'),
                            'c': KeytabCredential('w', '/kt')},
                           fallback=CertificateCredential('/key', '', 'x'))
    fields = request_fields(mapped)
    response = pb2.GetCredentialResponse(**fields)
    assert from_proto(response) == mapped
    for single in (PasswordCredential('u', 'p'), DefaultCredential(), KeytabCredential('u', '/k'),
                   CertificateCredential('/key', 'pp', 'u')):
        assert from_proto(pb2.GetCredentialResponse(**request_fields(single))) == single
    assert request_fields(None) == {}
    with pytest.raises(TypeError, match='not a credential'):
        request_fields('password')


@pytest.mark.parametrize('details, code, cls, message', [
    ('nl.esciencecenter.xenon.filesystems.NoSuchPathException: file adaptor: Path does not exist: /x',
     grpc.StatusCode.NOT_FOUND, xe.NoSuchPathException, 'file adaptor: Path does not exist: /x'),
    ("nl.esciencecenter.xenon.UnknownAdaptorException: AdaptorLoader adaptor: Adaptor 'q' not found",
     grpc.StatusCode.NOT_FOUND, xe.UnknownAdaptorException, "Adaptor 'q' not found"),
    ('nl.esciencecenter.xenon.XenonException: ssh adaptor: Connection authentication failed',
     grpc.StatusCode.INTERNAL, xe.InvalidCredentialException, 'authentication failed'),
    ('nl.esciencecenter.xenon.XenonException: ssh adaptor: Connection setup to h:1 failed!',
     grpc.StatusCode.INTERNAL, xe.XenonException, 'Connection setup to h:1 failed!'),
    ('nl.esciencecenter.xenon.SomethingNewException: boom', grpc.StatusCode.INTERNAL,
     xe.XenonException, 'boom'),
    ('File system with id: zzz', grpc.StatusCode.NOT_FOUND, xe.UnknownRpcException, 'zzz'),
    ('failed to connect to all addresses', grpc.StatusCode.UNAVAILABLE, xe.XenonServerError,
     'failed to connect'),
    ('Deadline Exceeded', grpc.StatusCode.DEADLINE_EXCEEDED, xe.DeadlineExceededException,
     'Deadline'),
    ('', grpc.StatusCode.UNKNOWN, xe.UnknownRpcException, 'gave no details (gRPC status UNKNOWN'),
])
def test_make_exception_picks_the_class_named_by_the_server(details, code, cls, message):
    error = xe.make_exception('FileSystem.exists', FakeRpcError(code, details))
    assert type(error) is cls
    assert isinstance(error, xe.XenonException)
    assert message in error.message and error.code == code
    assert 'FileSystem.exists' in str(error) and cls.__name__ in str(error)


def test_every_exception_class_is_registered():
    assert xe.EXCEPTIONS['PathAlreadyExistsException'] is xe.PathAlreadyExistsException
    assert all(issubclass(cls, xe.XenonException) for cls in xe.EXCEPTIONS.values())
    seeds = {'UnknownRpcException', 'AttributeNotSupportedException', 'CopyCancelledException',
             'DirectoryNotEmptyException', 'FileSystemClosedException',
             'IncompleteJobDescriptionException', 'InvalidCredentialException',
             'InvalidJobDescriptionException', 'InvalidLocationException',
             'InvalidOptionsException', 'InvalidPathException', 'InvalidPropertyException',
             'InvalidResumeTargetException', 'NoSuchCopyException', 'NoSuchJobException',
             'NoSuchPathException', 'NoSuchQueueException', 'PathAlreadyExistsException',
             'PropertyTypeException', 'UnknownAdaptorException', 'UnknownPropertyException',
             'UnsupportedJobDescriptionException', 'UnsupportedOperationException',
             'XenonRuntimeException'}
    assert seeds <= set(xe.EXCEPTIONS)


def test_a_lost_connection_is_not_mistaken_for_a_dead_server():
    from xenon_backend.server import Server
    lost = FakeRpcError(grpc.StatusCode.UNAVAILABLE, 'nl.esciencecenter.xenon.adaptors.'
                        'NotConnectedException: sftp adaptor: lstat(/home/u) client is closed')
    assert type(Server(port=1).translate('FileSystem.exists', lost)) is xe.NotConnectedException
    gone = FakeRpcError(grpc.StatusCode.UNAVAILABLE, 'failed to connect to all addresses')
    error = Server(port=1).translate('FileSystem.exists', gone)
    assert type(error) is xe.XenonServerError and 'no xenon-grpc server answers on port 1' in str(error)

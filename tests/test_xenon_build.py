"""xenon_backend.build: finding and fetching the jar, the proto, the stubs."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from xenon_backend import build, jar
from xenon_helpers import require, xenon_missing


def real_jar():
    require('xenon-grpc', xenon_missing(), 'run bash scripts/setup_xenon.sh')
    return build.find_jar()


def test_the_environment_variable_overrides_the_jar(monkeypatch, tmp_path):
    monkeypatch.setenv(build.JAR_ENV, str(tmp_path / 'nowhere.jar'))
    with pytest.raises(build.BuildError, match='XENON_GRPC_JAR=.*nowhere.jar does not name a file'):
        build.find_jar()
    fake = tmp_path / 'mine.jar'
    fake.write_bytes(b'x')
    monkeypatch.setenv(build.JAR_ENV, str(fake))
    assert build.find_jar() == fake
    assert build.jar_candidates()[0] == fake


def test_a_missing_jar_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.delenv(build.JAR_ENV, raising=False)
    monkeypatch.setattr(jar, 'PROJECT_DIR', tmp_path / 'project')
    monkeypatch.setenv('XDG_DATA_HOME', str(tmp_path / 'data'))
    with pytest.raises(build.JarMissing, match=r'run `python -m xenon_backend.build`.*pyxenon==3.0.3'):
        build.find_jar()
    assert build.default_jar_target() == tmp_path / 'data' / 'cluster' / 'jar' / build.JAR_NAME


def test_a_file_that_is_no_jar_is_refused(tmp_path):
    bogus = tmp_path / 'bogus.jar'
    bogus.write_bytes(b'not a zip')
    with pytest.raises(build.BuildError, match='not a xenon-grpc jar'):
        build.proto_text(bogus)
    with zipfile.ZipFile(tmp_path / 'empty.jar', 'w') as archive:
        archive.writestr('other.txt', 'x')
    with pytest.raises(build.BuildError, match='xenon.proto'):
        build.extract_proto(tmp_path / 'empty.jar', tmp_path / 'out.proto')
    assert not (tmp_path / 'out.proto').exists()


@pytest.mark.xenon
def test_the_proto_comes_from_the_jar_and_equals_what_java_prints(tmp_path):
    jar = real_jar()
    proto = build.extract_proto(jar, tmp_path / 'xenon.proto')
    text = proto.read_text()
    assert 'package xenon;' in text
    assert text.count('service ') == 2 and text.count('  rpc ') == 59
    printed = subprocess.run(['java', '-jar', str(jar), '--proto'], capture_output=True,
                             text=True, timeout=120)
    assert printed.returncode == 0
    assert printed.stdout.strip() == text.strip()
    assert build.sha256(jar) == build.JAR_SHA256


@pytest.mark.xenon
def test_stubs_are_generated_with_relative_imports_and_only_once(tmp_path):
    jar = real_jar()
    proto = build.extract_proto(jar, tmp_path / 'protos' / 'xenon.proto')
    out = tmp_path / 'stubs'
    build.generate_stubs(proto, out)
    grpc_text = (out / 'xenon_pb2_grpc.py').read_text()
    assert 'from . import xenon_pb2 as xenon__pb2' in grpc_text
    assert '\nimport xenon_pb2' not in grpc_text
    assert build.stubs_current(proto, out)
    before = (out / 'xenon_pb2.py').stat().st_mtime_ns
    build.generate_stubs(proto, out)
    assert (out / 'xenon_pb2.py').stat().st_mtime_ns == before
    build.generate_stubs(proto, out, force=True)
    assert (out / 'xenon_pb2_grpc.py').read_text() == grpc_text
    with pytest.raises(build.BuildError, match='missing'):
        build.generate_stubs(tmp_path / 'none.proto', out)


@pytest.mark.xenon
def test_the_installed_stubs_import_with_the_installed_grpcio_and_protobuf():
    require('xenon-grpc', xenon_missing(), 'run bash scripts/setup_xenon.sh')
    from xenon_backend import _stubs
    pb2, pb2_grpc = _stubs.modules()
    services = pb2.DESCRIPTOR.services_by_name
    assert pb2.DESCRIPTOR.package == 'xenon' and set(services) == {'FileSystemService',
                                                                   'SchedulerService'}
    assert sum(len(s.methods) for s in services.values()) == 59
    assert hasattr(pb2_grpc, 'SchedulerServiceStub')


@pytest.mark.xenon
def test_the_build_command_is_idempotent():
    real_jar()
    done = subprocess.run([sys.executable, '-m', 'xenon_backend.build'], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'jar:' in done.stdout and 'stubs:' in done.stdout
    assert 'RuntimeWarning' not in done.stderr


@pytest.mark.xenon
def test_a_jar_with_the_wrong_checksum_is_refused(monkeypatch, tmp_path):
    real_jar()
    monkeypatch.setattr(jar, 'JAR_SHA256', '0' * 64)
    target = tmp_path / 'jar' / build.JAR_NAME
    with pytest.raises(build.BuildError, match='refusing to use it'):
        build.fetch_jar(target)
    assert not os.path.exists(target) and os.listdir(target.parent) == []


@pytest.mark.xenon
def test_a_damaged_jar_in_the_data_dir_is_refused_and_not_used(monkeypatch, tmp_path):
    """A jar with the wrong SHA-256 where the package looks is refused with its path named:
    not fetched over, not started."""
    from xenon_backend.exceptions import XenonServerError
    from xenon_backend.server import Server
    good = real_jar().read_bytes()
    monkeypatch.delenv(build.JAR_ENV, raising=False)
    monkeypatch.setattr(jar, 'PROJECT_DIR', tmp_path / 'project')
    monkeypatch.setenv('XDG_DATA_HOME', str(tmp_path / 'data'))
    damaged = build.default_jar_target()
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(good[:-100] + bytes(100))
    for call in (build.find_jar, build.ensure_jar):
        with pytest.raises(build.BuildError, match=f'{damaged}.*refusing to use it'):
            call()
    with pytest.raises(XenonServerError, match='refusing to use it') as caught:
        Server(tls_dir=tmp_path / 'tls').start(stop_at_exit=False)
    assert str(damaged) in str(caught.value)
    assert os.listdir(damaged.parent) == [damaged.name]        # left for the user, not replaced

"""known_hosts as xenon-grpc's SSH client reads it: the first entry of each name counts."""
from __future__ import annotations

import subprocess

import pytest

from cluster.run.remote.known_hosts import (add_keys_command, first_key_types,
                                            replace_keys_command)


def _key(tmp_path, kind):
    path = tmp_path / f'host_{kind}'
    subprocess.run(['ssh-keygen', '-q', '-t', kind, '-N', '', '-f', str(path)], check=True)
    return (tmp_path / f'host_{kind}.pub').read_text().split()[:2]


@pytest.fixture
def keys(tmp_path):
    return {kind: _key(tmp_path, kind) for kind in ('ed25519', 'ecdsa')}


def _write(path, entries):
    path.write_text(''.join(f'{name} {kind} {blob}\n' for name, (kind, blob) in entries))


def test_the_first_entry_of_each_name_is_reported(tmp_path, keys):
    known = tmp_path / 'known_hosts'
    _write(known, [('[127.0.0.1]:2222', keys['ed25519']), ('[127.0.0.1]:2222', keys['ecdsa']),
                   ('[localhost]:2222', keys['ecdsa']), ('[localhost]:2222', keys['ed25519'])])
    assert first_key_types('127.0.0.1', 2222, str(known)) == {
        '127.0.0.1': 'ssh-ed25519', 'localhost': 'ecdsa-sha2-nistp256'}


def test_hashed_entries_and_missing_names(tmp_path, keys):
    known = tmp_path / 'known_hosts'
    _write(known, [('hpc.example.org', keys['ecdsa']), ('[127.0.0.1]:2222', keys['ecdsa'])])
    subprocess.run(['ssh-keygen', '-H', '-f', str(known)], check=True, capture_output=True)
    assert 'hpc.example.org' not in known.read_text()
    assert first_key_types('hpc.example.org', 22, str(known)) == {
        'hpc.example.org': 'ecdsa-sha2-nistp256'}
    assert first_key_types('localhost', 2222, str(known)) == {
        '127.0.0.1': 'ecdsa-sha2-nistp256', 'localhost': None}
    assert first_key_types('other.example.org', 22, str(tmp_path / 'none')) == {
        'other.example.org': None}


def test_the_commands_sort_ecdsa_first_and_quote_names():
    assert add_keys_command('hpc.example.org', 22) == (
        'mkdir -p ~/.ssh && chmod 700 ~/.ssh && ssh-keyscan hpc.example.org '
        '| sort -s -k2,2 >> ~/.ssh/known_hosts')
    assert replace_keys_command('localhost', 2200).startswith(
        "ssh-keygen -R '[127.0.0.1]:2200' -f ~/.ssh/known_hosts && "
        "ssh-keygen -R '[localhost]:2200' -f ~/.ssh/known_hosts && mkdir")

"""Tests of cluster.config_file: ~/.cluster reading, writing, profiles, bad input."""
from __future__ import annotations

import configparser
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from cluster import config_file
from cluster.config_file import Profile
from cluster.run.errors import ConfigError, OptionError, ProfileError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, '~cluster.example')


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """A config path in a fresh directory, in use through CLUSTER_CONFIG."""
    path = tmp_path / 'cluster.ini'
    monkeypatch.setenv('CLUSTER_CONFIG', str(path))
    return path


def write(path, text):
    path.write_text(textwrap.dedent(text).lstrip())


# ---------------------------------------------------------------------------------------
# import and paths
# ---------------------------------------------------------------------------------------

def test_import_reads_and_writes_nothing(tmp_path):
    home = tmp_path / 'home'
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != 'CLUSTER_CONFIG'}
    env['HOME'] = str(home)
    code = 'import cluster, cluster.config_file'
    subprocess.run([sys.executable, '-c', code], env=env, check=True, cwd=str(tmp_path))
    assert os.listdir(home) == []
    # and the first read without a file still writes nothing
    code = 'import cluster.config_file as c; print(c.get("queue", "max_queue_len"))'
    out = subprocess.run([sys.executable, '-c', code], env=env, check=True, cwd=str(tmp_path),
                         capture_output=True, text=True).stdout
    assert out.strip() == '1000'
    assert os.listdir(home) == []


def test_default_path_is_home_dot_cluster(monkeypatch, tmp_path):
    monkeypatch.delenv('CLUSTER_CONFIG', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))
    assert config_file.config_path() == str(tmp_path / '.cluster')


def test_env_var_is_read_at_call_time(tmp_path, monkeypatch):
    first, second = tmp_path / 'a.ini', tmp_path / 'b.ini'
    monkeypatch.setenv('CLUSTER_CONFIG', str(first))
    config_file.set('queue', 'max_queue_len', 7)
    monkeypatch.setenv('CLUSTER_CONFIG', str(second))
    assert config_file.get('queue', 'max_queue_len') == 1000
    assert not second.exists()
    monkeypatch.setenv('CLUSTER_CONFIG', str(first))
    assert config_file.get('queue', 'max_queue_len') == 7


def test_write_by_another_process_is_seen(conf):
    config_file.set('queue', 'max_queue_len', 10)
    assert config_file.get('queue', 'max_queue_len') == 10        # now cached
    code = 'import cluster.config_file as c; c.set("queue", "max_queue_len", 11)'
    subprocess.run([sys.executable, '-c', code], check=True, env=dict(os.environ))
    assert config_file.get('queue', 'max_queue_len') == 11


# ---------------------------------------------------------------------------------------
# get / set / delete
# ---------------------------------------------------------------------------------------

def test_builtin_settings_apply_without_a_file(conf):
    assert config_file.get('queue', 'queue_update') == 2
    assert config_file.get('queue', 'max_queue_len') == 1000
    assert config_file.get('jobqueue', 'cores') is None
    assert config_file.get('queue') == {'max_queue_len': 1000, 'queue_update': 2}
    everything = config_file.get()
    assert everything['jobqueue'] == {'cores': None}
    assert everything['profile.large']['cores'] == 16
    assert not conf.exists()


def test_set_get_round_trip_with_types(conf):
    values = {'an_int': 42, 'a_float': 0.5, 'yes': True, 'no': False, 'text': 'hello world',
              'empty': None, 'a_list': ['a', 'b']}
    for key, value in values.items():
        config_file.set('mine', key, value)
    expected = dict(values, a_list='a,b')
    assert config_file.get('mine') == expected
    assert config_file.get('mine', 'an_int') == 42
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(conf)
    assert parser['mine']['yes'] == 'true' and parser['mine']['a_list'] == 'a,b'


def test_missing_key_with_default_is_created(conf):
    assert config_file.get('queue', 'queue_update', 5) == 5
    assert 'queue_update = 5' in conf.read_text()
    assert config_file.get('queue', 'queue_update') == 5
    assert config_file.get('queue', 'queue_update', 9) == 5      # an existing key wins
    assert config_file.get('other', 'thing') is None
    assert 'thing' not in conf.read_text()


def test_settings_values_are_checked_on_write(conf):
    with pytest.raises(ConfigError, match=r"\[queue\] max_queue_len: 'many' is not a whole"):
        config_file.set('queue', 'max_queue_len', 'many')
    with pytest.raises(ConfigError, match='queue_update'):
        config_file.set('queue', 'queue_update', 0)
    with pytest.raises(ConfigError, match='cores'):
        config_file.set('jobqueue', 'cores', -2)
    assert not conf.exists()
    config_file.set('jobqueue', 'cores', '')
    assert config_file.get('jobqueue', 'cores') is None
    config_file.set('queue', 'max_queue_len', None)                # empty: built-in default
    assert 'max_queue_len =\n' in conf.read_text()
    assert config_file.get('queue', 'max_queue_len') == 1000


def test_settings_values_are_checked_on_read(conf):
    write(conf, """
        [queue]
        # comment
        max_queue_len = lots
        """)
    with pytest.raises(ConfigError) as caught:
        config_file.get('queue', 'max_queue_len')
    message = str(caught.value)
    assert str(conf) in message and 'line 3' in message and 'max_queue_len' in message
    assert "'lots'" in message


def test_delete_key_and_section(conf):
    config_file.set('a', 'x', 1)
    config_file.set('a', 'y', 2)
    config_file.set('b', 'z', 3)
    assert config_file.delete('a', 'x') is True
    assert config_file.delete('a', 'x') is False
    assert config_file.get('a') == {'y': 2}
    assert config_file.delete('a') is True
    assert config_file.delete('a') is False
    assert config_file.get('a') == {}
    assert config_file.get('b') == {'z': 3}
    assert '[a]' not in conf.read_text()


def test_the_retired_sleep_len_is_refused_and_warned_of_not_read(conf, caplog):
    """sleep_len (of older versions) is read by nothing: setting it is refused with the
    reason, and a file that has it still works, with a warning naming the line."""
    with pytest.raises(ConfigError, match=r'sleep_len in \[queue\] is no longer used'):
        config_file.set('queue', 'sleep_len', 1)
    conf.write_text('[queue]\nsleep_len = 1\nqueue_update = 5\n')
    with caplog.at_level('WARNING', logger='cluster.config_file.file'):
        assert config_file.get('queue', 'queue_update') == 5
    assert any('sleep_len in [queue] is no longer used' in r.getMessage() for r in caplog.records)


def test_get_config_is_a_copy(conf):
    config_file.set('queue', 'queue_update', 3)
    parser = config_file.get_config()
    assert isinstance(parser, configparser.ConfigParser)
    assert parser['queue']['queue_update'] == '3'
    parser['queue']['queue_update'] = '99'
    assert config_file.get('queue', 'queue_update') == 3


def test_bad_names_and_passwords_refused(conf):
    with pytest.raises(ConfigError, match='password'):
        config_file.set('profile.hpc', 'password', 'secret')
    with pytest.raises(ConfigError, match='password'):
        config_file.set('queue', 'Password', 'secret')
    with pytest.raises(ConfigError, match='section name'):
        config_file.set('bad]name', 'x', 1)
    with pytest.raises(ConfigError, match='key name'):
        config_file.set('queue', 'a = b', 1)
    with pytest.raises(OptionError, match='several lines'):
        config_file.set('mine', 'note', 'one\ntwo')
    with pytest.raises(ConfigError, match="unknown key 'note' in \\[queue\\]"):
        config_file.set('queue', 'note', 'x')
    assert not conf.exists()


# ---------------------------------------------------------------------------------------
# writes keep everything else
# ---------------------------------------------------------------------------------------

def test_writes_keep_comments_other_sections_and_order(conf):
    original = textwrap.dedent("""
        # my settings
        [queue]
        ; poll slowly
        queue_update = 10

        [custom]
        anything = goes here
        # trailing comment of custom

        [profile.big]
        # big jobs
        cores = 8
        """).lstrip()
    conf.write_text(original)
    config_file.set('queue', 'max_queue_len', 50)
    config_file.set('queue', 'queue_update', 12)
    config_file.set_profile('big', {'mem': '2G'})
    text = conf.read_text()
    assert text == original.replace('queue_update = 10\n',
                                     'queue_update = 12\nmax_queue_len = 50\n') \
        .replace('cores = 8\n', 'cores = 8\nmem = 2048\n')
    config_file.delete('custom')
    text = conf.read_text()
    assert '[custom]' not in text and 'anything' not in text
    assert '# trailing comment of custom' in text and '# big jobs' in text


def test_write_is_atomic_0600_and_leaves_no_temporary(conf):
    conf.write_text('[custom]\nkeep = me\n')
    os.chmod(conf, 0o644)
    inode = os.stat(conf).st_ino
    config_file.set('queue', 'queue_update', 2)
    assert os.stat(conf).st_ino != inode                  # replaced, not rewritten in place
    assert os.stat(conf).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(conf.parent)) == ['cluster.ini', 'cluster.ini.lock']
    assert config_file.get('custom', 'keep') == 'me'


def test_file_without_final_newline(conf):
    conf.write_text('[queue]\nqueue_update = 4')
    config_file.set('queue', 'max_queue_len', 3)
    assert config_file.get('queue') == {'max_queue_len': 3, 'queue_update': 4}


def test_symlinked_file_stays_a_symlink(tmp_path, monkeypatch):
    target = tmp_path / 'dotfiles' / 'cluster'
    target.parent.mkdir()
    target.write_text('[queue]\nqueue_update = 4\n')
    link = tmp_path / '.cluster'
    link.symlink_to(target)
    monkeypatch.setenv('CLUSTER_CONFIG', str(link))
    config_file.set('queue', 'max_queue_len', 3)
    assert link.is_symlink()
    assert 'max_queue_len = 3' in target.read_text()


def test_not_a_regular_file(tmp_path, monkeypatch):
    monkeypatch.setenv('CLUSTER_CONFIG', str(tmp_path))
    with pytest.raises(ConfigError, match=str(tmp_path)):
        config_file.get('queue', 'queue_update')


# ---------------------------------------------------------------------------------------
# corrupt files: error names file and line; the file is never touched
# ---------------------------------------------------------------------------------------

CORRUPT = {
    'no section': ('queue_update = 2\n', 1, 'before any'),
    'duplicate section': ('[queue]\nqueue_update = 1\n\n[queue]\nqueue_update = 2\n', 4, 'twice'),
    'duplicate key': ('[queue]\nqueue_update = 1\nqueue_update = 2\n', 3, 'twice'),
    'garbage line': ('[queue]\nqueue_update = 1\nthis is not ini\n', 3, 'cannot parse'),
    'not utf-8': (b'[queue]\nqueue_update = 1\nname = \xff\xfe\n', 3, 'UTF-8'),
    'multi-line value': ('[queue]\nqueue_update = 1\n  2\n', 2, 'several lines'),
    'password': ('[profile.hpc]\nremote = ssh://a@b\npassword = x\n', 3, 'password'),
}


@pytest.mark.parametrize('case', sorted(CORRUPT))
def test_corrupt_file_error_names_file_and_line_and_file_is_untouched(conf, case):
    content, line, words = CORRUPT[case]
    data = content if isinstance(content, bytes) else content.encode()
    conf.write_bytes(data)
    for action in (lambda: config_file.get('queue', 'queue_update'),
                   lambda: config_file.get('queue', 'max_queue_len', 5),
                   lambda: config_file.set('queue', 'queue_update', 9),
                   lambda: config_file.delete('queue'),
                   lambda: config_file.set_profile('new', {'cores': 2}),
                   lambda: config_file.get_profile('default')):
        with pytest.raises(ConfigError) as caught:
            action()
        message = str(caught.value)
        assert str(conf) in message and f'line {line}' in message and words in message
        assert conf.read_bytes() == data
    assert sorted(os.listdir(conf.parent)) in (['cluster.ini'], ['cluster.ini', 'cluster.ini.lock'])


# ---------------------------------------------------------------------------------------
# profiles
# ---------------------------------------------------------------------------------------

def test_builtin_profiles(conf):
    profiles = config_file.get_profile()
    assert {'default', 'small', 'large'} <= set(profiles)
    assert profiles['default'].args == {'cores': 1, 'nodes': 1, 'mem': 4000, 'time': '02:00:00'}
    assert config_file.get_profile('large').args['time'] == '24:00:00'
    assert config_file.get_profile('small').builtin is True
    assert config_file.get('profile.small', 'mem') == 1000
    assert not conf.exists()


def test_file_profile_replaces_builtin_whole(conf):
    write(conf, """
        [profile.large]
        cores = 64
        """)
    large = config_file.get_profile('large')
    assert large.args == {'cores': 64}
    assert large.builtin is False


def test_missing_profile_lists_existing(conf):
    config_file.set_profile('gpu', {'cores': 2})
    with pytest.raises(ProfileError) as caught:
        config_file.get_profile('gpus')
    message = str(caught.value)
    for name in ('default', 'small', 'large', 'gpu'):
        assert name in message
    assert "did you mean 'gpu'" in message and "'gpus'" in message


def test_set_profile_normalises_and_stores(conf):
    stored = config_file.set_profile('big', {'memory': '4GB', 'walltime': '1-00:00:00',
                                             'cpus': 4})
    assert stored.args == {'mem': 4096, 'time': '24:00:00', 'cores': 4}
    text = conf.read_text()
    assert '[profile.big]' in text and 'mem = 4096' in text and 'time = 24:00:00' in text
    assert config_file.get_profile('big') == stored
    assert oct(os.stat(conf).st_mode & 0o777) == oct(0o600)


def test_set_profile_update_merge_replace_and_remove(conf):
    config_file.set_profile('p', {'cores': 2, 'mem': 100})
    config_file.set_profile('p', {'time': 60})
    assert config_file.get_profile('p').args == {'cores': 2, 'mem': 100, 'time': '00:01:00'}
    config_file.set_profile('p', {'memory': None})                    # None removes, by synonym
    assert config_file.get_profile('p').args == {'cores': 2, 'time': '00:01:00'}
    config_file.set_profile('p', {'nodes': 3}, update=False)
    assert config_file.get_profile('p').args == {'nodes': 3}
    # updating a built-in profile starts from the built-in values
    config_file.set_profile('small', {'partition': 'short'})
    assert config_file.get_profile('small').args == {
        'cores': 1, 'nodes': 1, 'mem': 1000, 'time': '01:00:00', 'partition': 'short'}


def test_set_on_profile_section_normalises_synonym_in_file(conf):
    write(conf, """
        [profile.p]
        memory = 4GB
        """)
    config_file.set('profile.p', 'mem', '8G')
    text = conf.read_text()
    assert 'memory' not in text and 'mem = 8192' in text


def test_profile_validated_on_write(conf):
    with pytest.raises(OptionError, match="'memroy'.*did you mean 'memory'"):
        config_file.set_profile('p', {'memroy': '4G'})
    with pytest.raises(OptionError, match="'mem'.*4XB"):
        config_file.set_profile('p', {'mem': '4XB'})
    with pytest.raises(ProfileError, match='profile name'):
        config_file.set_profile('bad name', {'cores': 1})
    assert not conf.exists()


def test_profile_validated_on_read(conf):
    write(conf, """
        [profile.ok]
        cores = 2

        [profile.broken]
        cores = 2
        memroy = 4G
        """)
    assert config_file.get_profile('ok').args == {'cores': 2}       # others still usable
    with pytest.raises(ConfigError) as caught:
        config_file.get_profile('broken')
    message = str(caught.value)
    assert str(conf) in message and 'line 6' in message
    assert '[profile.broken]' in message and "'memroy'" in message
    with pytest.raises(ConfigError, match='memroy'):
        config_file.get_profile()
    # the bad key can be removed, which makes the profile usable again
    config_file.delete('profile.broken', 'memroy')
    assert config_file.get_profile('broken').args == {'cores': 2}


def test_profile_object(conf):
    profile = Profile('mine', {'cpus': 2, 'remote': 'ssh://ann@host/work', 'qtype': 'SLURM'})
    assert profile.name == 'mine'
    assert profile.args == {'cores': 2}
    assert profile.connection == {'remote': 'ssh://ann@host/work', 'qtype': 'slurm',
                                  'strict_host_key': True}
    assert repr(profile) == ("Profile('mine', cores=2, remote='ssh://ann@host/work', "
                             "qtype='slurm', strict_host_key=True)")
    profile.write()
    assert config_file.get_profile('mine') == profile
    config_file.delete_profile('mine')
    with pytest.raises(ProfileError, match='mine'):
        config_file.get_profile('mine')


def test_profile_reads_like_the_seeds_dict(conf):
    """Issue 9 item 9: ``Profile`` is "a thin wrapper around a dict", as the seed says."""
    import cluster
    cluster.config_file.set_profile('seed', {'cpus': 3, 'mem': '1GB', 'qtype': 'slurm'},
                                    update=False)
    profile = cluster.config_file.get_profile('seed')
    assert profile['cores'] == 3 and profile['mem'] == 1024 and profile['qtype'] == 'slurm'
    assert profile.kwds == {'cores': 3, 'mem': 1024, 'qtype': 'slurm'}
    assert 'mem' in profile and 'qos' not in profile and profile.get('qos', 'x') == 'x'
    with pytest.raises(KeyError):
        profile['qos']


def test_delete_profile(conf):
    config_file.set_profile('large', {'cores': 2}, update=False)
    assert config_file.get_profile('large').args == {'cores': 2}
    config_file.delete_profile('large')
    assert config_file.get_profile('large').args['cores'] == 16     # built-in again
    with pytest.raises(ProfileError, match='built in'):
        config_file.delete_profile('large')
    with pytest.raises(ProfileError, match="'nope'"):
        config_file.delete_profile('nope')


# ---------------------------------------------------------------------------------------
# remote profiles (connection keys)
# ---------------------------------------------------------------------------------------

def test_parse_remote():
    assert config_file.parse_remote('ssh://ann@hpc.example.org:2222/scratch/ann') == \
        config_file.Remote('ann', 'hpc.example.org', 2222, '/scratch/ann')
    assert config_file.parse_remote('ssh://host') == config_file.Remote(None, 'host', None, None)
    assert config_file.parse_remote('ssh://u@[::1]:22').host == '::1'


@pytest.mark.parametrize('url, words', [
    ('http://ann@host', 'ssh://'),
    ('ssh://ann@', 'no host'),
    ('ssh://ann@host:99999', 'bad port'),
    ('ssh://ann@host:port', 'bad port'),
    ('ssh://ann:secret@host', 'password'),
    ('ssh://ann@host/dir?x=1', 'form'),
    ('login.example.org', 'ssh://'),
])
def test_bad_remote_refused(conf, url, words):
    with pytest.raises(OptionError) as caught:
        config_file.set_profile('hpc', {'remote': url})
    assert "'remote'" in str(caught.value) and words in str(caught.value)
    assert 'secret' not in str(caught.value)
    assert not conf.exists()


@pytest.mark.parametrize('key, value, words', [
    ('qtype', 'pbs', 'slurm, sge, torque'),
    ('strict_host_key', 'maybe', 'true or false'),
    ('password', 'secret', 'never stored'),
    ('key', 3, 'non-empty string'),
])
def test_bad_connection_keys_refused(conf, key, value, words):
    with pytest.raises(OptionError, match=words):
        config_file.set_profile('hpc', {'remote': 'ssh://a@b', key: value})
    assert not conf.exists()


def test_remote_profile_from_file(conf):
    write(conf, """
        [profile.hpc]
        remote = ssh://ann@login:2222/scratch
        qtype = torque
        key = ~/.ssh/id_ed25519
        python = /usr/bin/python3
        strict_host_key = no
        cores = 4
        """)
    profile = config_file.get_profile('hpc')
    assert profile.args == {'cores': 4}
    assert profile.connection == {'remote': 'ssh://ann@login:2222/scratch', 'qtype': 'torque',
                                  'key': '~/.ssh/id_ed25519', 'python': '/usr/bin/python3',
                                  'strict_host_key': False}
    assert profile.remote == config_file.Remote('ann', 'login', 2222, '/scratch')
    assert config_file.get_profile('default').connection == {}


def test_bad_connection_key_in_file_names_line(conf):
    write(conf, """
        [profile.hpc]
        remote = ssh://ann@login
        qtype = lsf
        """)
    with pytest.raises(ConfigError) as caught:
        config_file.get_profile('hpc')
    message = str(caught.value)
    assert str(conf) in message and 'line 3' in message and "'qtype'" in message


# ---------------------------------------------------------------------------------------
# concurrency: real processes
# ---------------------------------------------------------------------------------------

WRITERS = 8
PROFILES_EACH = 4


def _writer(index, barrier):
    barrier.wait(timeout=60)
    for number in range(PROFILES_EACH):
        config_file.set_profile(f'w{index}_{number}', {'cores': index + 1, 'mem': number + 1})
    config_file.set(f'writer{index}', 'done', True)


def test_eight_processes_set_profile_at_once(conf):
    conf.write_text('# keep me\n[queue]\nqueue_update = 3\n')
    # spawn: fresh interpreters, safe whatever threads this test process runs
    context = multiprocessing.get_context('spawn')
    barrier = context.Barrier(WRITERS)
    processes = [context.Process(target=_writer, args=(i, barrier)) for i in range(WRITERS)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(timeout=120)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
    assert [p.exitcode for p in processes] == [0] * WRITERS
    profiles = config_file.get_profile()
    for index in range(WRITERS):
        assert config_file.get(f'writer{index}', 'done') is True
        for number in range(PROFILES_EACH):
            assert profiles[f'w{index}_{number}'].args == {'cores': index + 1, 'mem': number + 1}
    text = conf.read_text()
    assert text.startswith('# keep me\n[queue]\nqueue_update = 3\n')
    assert config_file.check_file()


def test_threads_of_one_process_do_not_lose_writes(conf):
    errors = []

    def write_some(index):
        try:
            for number in range(5):
                config_file.set(f'thread{index}', f'k{number}', number)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
    threads = [threading.Thread(target=write_some, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and not any(t.is_alive() for t in threads)
    for index in range(8):
        assert config_file.get(f'thread{index}') == {f'k{n}': n for n in range(5)}


# ---------------------------------------------------------------------------------------
# ~cluster.example stays in sync with the code
# ---------------------------------------------------------------------------------------

def test_example_parses_and_covers_every_key():
    from cluster.options import OPTIONS
    checked = config_file.check_file(EXAMPLE)       # parses and validates every profile
    parser = configparser.ConfigParser(interpolation=None, default_section='')
    parser.read(EXAMPLE)
    for section, defaults in config_file.DEFAULTS.items():
        assert set(defaults) <= set(parser[section]), f'[{section}] lacks keys in the example'
        for key, value in defaults.items():
            assert checked[section][key] == value, f'[{section}] {key} differs from the code'
    profile_keys = set()
    for section in parser.sections():
        if section.startswith(config_file.PROFILE_PREFIX):
            profile_keys |= set(parser[section])
    missing = (set(OPTIONS) | set(config_file.CONNECTION_KEYS)) - profile_keys
    assert not missing, f'~cluster.example shows no profile with {sorted(missing)}'
    text = ' '.join(open(EXAMPLE).read().split())
    for name, values in config_file.BUILTIN_PROFILES.items():
        described = f'{name}: ' + ', '.join(f'{k} {v}' for k, v in values.items())
        assert described in text, f'the example misdescribes the built-in profile {name!r}'
    assert any(parser[s].get('remote') for s in parser.sections()), 'no remote profile shown'


def test_example_works_as_a_config_file(tmp_path, monkeypatch):
    copy = tmp_path / '.cluster'
    copy.write_text(open(EXAMPLE).read())
    monkeypatch.setenv('CLUSTER_CONFIG', str(copy))
    hpc = config_file.get_profile('hpc')
    assert hpc.remote.host == 'login.hpc.example.org' and hpc.connection['qtype'] == 'slurm'
    assert config_file.get_profile('large').args['time'] == '24:00:00'
    everything = config_file.get_profile('everything')
    assert everything.args['mem'] == 8192 and 'features' not in everything.args   # e.g. only
    before = copy.read_text().splitlines()
    config_file.set_profile('hpc', {'cores': 16})
    after = copy.read_text().splitlines()
    assert len(after) == len(before)                          # every comment kept
    changed = {(old, new) for old, new in zip(before, after) if old != new}
    assert changed == {('cores = 8', 'cores = 16')}          # the others stay as written


def test_inline_comments_are_comments_and_stay_on_edit(conf):
    conf.write_text('[queue]\nqueue_update = 5   # seconds\nmax_queue_len = 2 ; short\n'
                    '[profile.hpc]\nqtype = slurm # or torque\ncores = 2\n')
    assert config_file.get('queue', 'queue_update') == 5
    assert config_file.get('queue', 'max_queue_len') == 2
    assert config_file.get_profile('hpc').connection['qtype'] == 'slurm'
    config_file.set('queue', 'queue_update', 7)
    assert 'queue_update = 7 # seconds\n' in conf.read_text()
    config_file.set_profile('hpc', {'cores': 4})
    assert 'qtype = slurm # or torque\n' in conf.read_text()    # untouched: kept as written
    with pytest.raises(OptionError, match='comment'):
        config_file.set('mine', 'note', 'a #b')                # would read back as 'a'
    config_file.set('mine', 'url', 'http://x/#frag')            # no space: not a comment
    assert config_file.get('mine', 'url') == 'http://x/#frag'

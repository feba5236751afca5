"""``~/.cluster``: queue settings and keyword profiles, in one INI file.

The file is ``$CLUSTER_CONFIG`` when that is set (looked up at every call), else
``~/.cluster``. It is read on first use, cached, and read again when it changes on
disk; importing this package reads and writes nothing.

Sections (see ``~cluster.example`` at the top of the repository):

* ``[queue]``: ``max_queue_len`` (1000), ``queue_update`` (2: seconds between status
  polls); the older ``sleep_len`` is no longer read (a warning says so);
* ``[jobqueue]``: ``cores`` (empty: every core of the machine);
* ``[records]``: ``retention_days`` (30): job records (:mod:`cluster.job.records`)
  untouched for longer are deleted;
* ``[profile.NAME]``, one per profile: job options (``cluster.options``) and, for a remote
  cluster, the connection keys ``remote``, ``qtype``, ``key``, ``python`` and
  ``strict_host_key``.

Built-in profiles ``default``, ``small`` and ``large`` apply unless the file defines a
profile of that name, which then wins whole. Other sections are kept and returned as is
(a warning names them: a plain ``[quick]`` is not the profile ``quick``).

Writing takes an exclusive lock on ``<file>.lock``, reads the file again under it, edits
only the lines that change (comments and every other key stay), checks that nothing else
changed, and replaces the file atomically with mode 0600. A file that does not parse is
never written: :class:`~cluster.run.errors.ConfigError` names the file and the line. One key
per line; comments start with ``#`` or ``;``, on their own lines or after a value (after
whitespace: ``qtype = slurm  # or torque``).

The package: :mod:`~cluster.config_file.settings` (get, set, delete, check_file),
:mod:`~cluster.config_file.profiles` (:class:`Profile` and its functions),
:mod:`~cluster.config_file.file` (the file in use, the built-in settings),
:mod:`~cluster.config_file.ini` (the INI layer) and :mod:`~cluster.config_file.values`
(values and connection keys). Every public name is importable from here.
"""
from __future__ import annotations

from .file import DEFAULT_PATH, DEFAULTS, ENV_VAR, PROFILE_PREFIX, config_path
from .ini import FORBIDDEN_KEYS
from .profiles import (BUILTIN_PROFILES, CONNECTION_DEFAULTS, CONNECTION_KEYS, Profile,
                       delete_profile, get_profile, set_profile)
from .settings import check_file, check_setting_name, delete, get, get_config, set
from .values import (SETTING_CHECKS, Remote, check_connection, format_value,
                     parse_remote, parse_value)

__all__ = ['DEFAULT_PATH', 'DEFAULTS', 'ENV_VAR', 'PROFILE_PREFIX', 'config_path',
           'FORBIDDEN_KEYS', 'BUILTIN_PROFILES', 'CONNECTION_DEFAULTS', 'CONNECTION_KEYS',
           'Profile', 'delete_profile', 'get_profile', 'set_profile', 'check_file',
           'check_setting_name', 'delete', 'get', 'get_config', 'set',
           'SETTING_CHECKS', 'Remote', 'check_connection', 'format_value', 'parse_remote',
           'parse_value']

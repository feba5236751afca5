"""The INI file layer under :mod:`cluster.config_file`: parse, cache, lock, edit, replace.

:func:`read` parses a file with configparser's rules, records on which lines each section
and key sits, and caches the result until the file changes on disk (inode, size, times).
:func:`modify` takes an exclusive lock on ``<file>.lock``, reads the file again under it,
edits only the lines that change (comments and every other key stay), checks that nothing
else changed, and replaces the file atomically with mode 0600. A file that does not parse
is never written: :class:`~cluster.run.errors.ConfigError` names the file and the line.
"""
from __future__ import annotations

import configparser
import contextlib
import copy
import fcntl
import logging
import os
import re
import threading
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from ..run.errors import ConfigError
from ..script.runner import write_atomic

logger = logging.getLogger(__name__)

#: keys refused anywhere in the file: secrets come from the environment or a prompt
FORBIDDEN_KEYS: Tuple[str, ...] = ('password', 'passphrase')

_HINT = 'fix the file by hand (it was left unchanged)'

#: a comment may also end a line: ``qtype = slurm  # or torque`` (after whitespace)
INLINE_COMMENTS: Tuple[str, ...] = ('#', ';')
_INLINE_COMMENT = re.compile(r'\s[#;].*$')


# ---------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------

class Layout(NamedTuple):
    """Where each section and key sits: [first line, line after the last) (0-based)."""

    sections: Dict[str, Tuple[int, int]]
    keys: Dict[Tuple[str, str], Tuple[int, int]]


_SECTION_LINE = re.compile(r'\[(?P<name>.+)\]')          # as configparser, on the stripped line
_KEY_LINE = re.compile(r'(?P<key>.*?)\s*[=:]\s*(?P<value>.*)$')


def layout(lines: List[str]) -> Layout:
    """Locate sections and keys with configparser's rules (checked against it by parse)."""
    sections: Dict[str, Tuple[int, int]] = {}
    keys: Dict[Tuple[str, str], Tuple[int, int]] = {}
    section: Optional[str] = None
    key: Optional[str] = None
    key_indent = 0
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped[0] in '#;':
            key = None
            continue
        indent = len(line) - len(line.lstrip())
        if section is not None and key is not None and indent > key_indent:
            keys[(section, key)] = (keys[(section, key)][0], number + 1)
            sections[section] = (sections[section][0], number + 1)
            continue
        key, key_indent = None, indent
        match = _SECTION_LINE.match(stripped)
        if match:
            section = match.group('name')
            sections[section] = (number, number + 1)
            continue
        match = _KEY_LINE.match(stripped)
        if section is not None and match and match.group('key'):
            key = match.group('key').rstrip().lower()
            keys[(section, key)] = (number, number + 1)
            sections[section] = (sections[section][0], number + 1)
    return Layout(sections, keys)


class State(NamedTuple):
    """One parsed file: its path, text, raw strings ``{section: {key: text}}`` and layout."""

    path: str
    text: str
    raw: Dict[str, Dict[str, str]]
    layout: Layout

    def line(self, section: str, key: Optional[str] = None) -> int:
        """1-based line of a section header or key (0 when absent)."""
        where = self.layout.keys.get((section, key)) if key else self.layout.sections.get(section)
        return where[0] + 1 if where else 0

    def where(self, section: str, key: Optional[str] = None) -> str:
        """``<path> line N, section [S], key 'K'``, for error messages."""
        line = self.line(section, key)
        return (f'{self.path}' + (f' line {line}' if line else '') + f', section [{section}]'
                + (f', key {key!r}' if key else ''))


def parse(text: str, path: str) -> State:
    """Parse the file's text; any problem raises ConfigError naming the file and line."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, default_section='',
                                       empty_lines_in_values=False,
                                       inline_comment_prefixes=INLINE_COMMENTS)
    hint = _HINT
    try:
        parser.read_string(text, source=path)
    except configparser.DuplicateSectionError as error:
        raise ConfigError(f'{path} line {error.lineno}: section [{error.section}] appears '
                          f'twice; {hint}') from None
    except configparser.DuplicateOptionError as error:
        raise ConfigError(f'{path} line {error.lineno}: key {error.option!r} appears twice in '
                          f'section [{error.section}]; {hint}') from None
    except configparser.MissingSectionHeaderError as error:
        raise ConfigError(f'{path} line {error.lineno}: {error.line.strip()!r} comes before any '
                          f'[section]; {hint}') from None
    except configparser.ParsingError as error:
        lineno, line = error.errors[0][0], error.errors[0][1]
        raise ConfigError(f'{path} line {lineno}: cannot parse {line.strip()!r} (expected '
                          f'[section], key = value, or a # comment); {hint}') from None
    except configparser.Error as error:
        raise ConfigError(f'{path}: {error}; {hint}') from None
    raw = {name: dict(parser.items(name, raw=True)) for name in parser.sections()}
    state = State(path, text, raw, layout(text.splitlines(keepends=True)))
    found = {(s, k) for s, keys in raw.items() for k in keys}
    if state.layout.sections.keys() != raw.keys() or state.layout.keys.keys() != found:
        raise ConfigError(f'{path}: the layout of the file is too unusual to edit safely; '
                          f'{hint}')
    for section, keys in raw.items():
        for key, value in keys.items():
            if '\n' in value:
                raise ConfigError(f'{state.where(section, key)}: the value spans several lines;'
                                  f' one line per key; {hint}')
            if key in FORBIDDEN_KEYS:
                raise ConfigError(f'{state.where(section, key)}: passwords are never stored in '
                                  f'the file; remove the key and give the password through the '
                                  f'environment or a prompt')
    return state


# ---------------------------------------------------------------------------------------
# reading, cached by stat
# ---------------------------------------------------------------------------------------

_cache_lock = threading.RLock()
_cache: Dict[str, Tuple[Any, State]] = {}


def _stamp(path: str) -> Any:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f'{path}: cannot read the config file: {error.strerror}') from None
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def read(path: str) -> State:
    """The parsed file, from the cache unless it changed on disk; a missing file is empty."""
    with _cache_lock:
        stamp = _stamp(path)
        cached = _cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        if stamp is None:
            state = parse('', path)
        else:
            try:
                with open(path, 'rb') as handle:
                    data = handle.read()
            except OSError as error:
                raise ConfigError(f'{path}: cannot read the config file: '
                                  f'{error.strerror}') from None
            try:
                text = data.decode('utf-8')
            except UnicodeDecodeError as error:
                line = data[:error.start].count(b'\n') + 1
                raise ConfigError(f'{path} line {line}: not UTF-8 text; {_HINT}') from None
            state = parse(text, path)
            logger.debug('read config file %s', path)
        _cache[path] = (stamp, state)
        return state


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------

class WriteFailed(ConfigError):
    """The file system refused the write (permissions, disk full...)."""


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """Hold an exclusive flock on ``<path>.lock`` (other processes and threads wait)."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handle = os.open(path + '.lock', os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise WriteFailed(f'{path}: cannot lock the config file: {error.strerror}') from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _replace(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a synced temporary file and a rename (mode 0600)."""
    if os.path.lexists(path) and not os.path.isfile(path):
        raise ConfigError(f'{path} is not a regular file; not writing to it')
    try:
        write_atomic(path, text)
    except OSError as error:
        raise WriteFailed(f'{path}: cannot write the config file: {error.strerror}') from None


#: an edit: ('set', section, key, text) | ('del', section, key, None)
#:          | ('drop', section, None, None) | ('section', section, None, None): make it exist
Edit = Tuple[str, str, Optional[str], Optional[str]]


def _apply(lines: List[str], edit: Edit) -> List[str]:
    """The lines with one edit made; every other line stays as it was."""
    kind, section, key, text = edit
    where_is = layout(lines)
    if kind == 'section' and section in where_is.sections:
        return lines
    if kind == 'drop':
        if section not in where_is.sections:
            return lines
        start, end = where_is.sections[section]
        while end < len(lines) and not lines[end].strip():
            end += 1
        return lines[:start] + lines[end:]
    where = where_is.keys.get((section, key))
    if kind == 'del':
        return lines if where is None else lines[:where[0]] + lines[where[1]:]
    new = [] if kind == 'section' else [f'{key} = {text}' if text else f'{key} =']
    if where is not None:
        comment = _INLINE_COMMENT.search(lines[where[0]].rstrip('\n').partition('=')[2])
        if new and comment:                  # an inline comment stays with its key
            new[0] += ' ' + comment.group(0).strip()
        return lines[:where[0]] + [line + '\n' for line in new] + lines[where[1]:]
    new = [line + '\n' for line in new]
    if section in where_is.sections:
        end = where_is.sections[section][1]
        return lines[:end] + new + lines[end:]
    gap = ['\n'] if lines and lines[-1].strip() else []
    return lines + gap + [f'[{section}]\n'] + new


def _expect(raw: Dict[str, Dict[str, str]], edit: Edit) -> None:
    """Make in ``raw`` the change the edit should make in the parsed file."""
    kind, section, key, text = edit
    if kind == 'drop':
        raw.pop(section, None)
    elif kind == 'del':
        raw.get(section, {}).pop(key, None)
    elif kind == 'section':
        raw.setdefault(section, {})
    else:
        raw.setdefault(section, {})[key] = text or ''


def modify(path: str, plan: Callable[[State], List[Edit]]) -> State:
    """Lock, re-read, plan edits on the fresh file, apply, verify, replace atomically.

    ``plan`` gets the file as read under the lock and returns the edits to make; the
    file as it is afterwards is returned."""
    with _locked(path), _cache_lock:
        _cache.pop(path, None)
        state = read(path)
        edits = plan(state)
        lines = state.text.splitlines(keepends=True)
        if lines and not lines[-1].endswith('\n'):
            lines[-1] += '\n'
        expected = copy.deepcopy(state.raw)
        for edit in edits:
            lines = _apply(lines, edit)
            _expect(expected, edit)
        text = ''.join(lines)
        if text == state.text:
            return state
        new = parse(text, path)
        if new.raw != expected:
            raise ConfigError(f'{path}: an edit would change more than asked; the file was '
                              'left unchanged (please report this)')
        _replace(path, text)
        _cache.pop(path, None)
        logger.debug('wrote config file %s: %s', path,
                     ', '.join(f'{k} [{s}] {n or ""}'.rstrip() for k, s, n, _ in edits))
        return read(path)

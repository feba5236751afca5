"""Help texts of the keyword options, from the table and from each batch system.

:func:`option_help` lists every option with its synonyms, default, accepted values and
the line it becomes in each batch system's script header (taken from the systems in
:data:`cluster.batch.SYSTEMS`), as plain text (``cluster options``), a reStructuredText
table (``docs/gen_keywords.py``) or a Markdown table.
"""
# Not named option_help.py: importing a submodule sets it as an attribute of the package,
# which would replace the function cluster.options.option_help by the module.
from __future__ import annotations

import logging
import re
from typing import List, Optional, Tuple, Type

from ..batch import BatchSystem, system_class, systems
from .table import GROUPS, OPTIONS, Option

logger = logging.getLogger(__name__)

HELP_MODES: Tuple[str, ...] = ('string', 'print', 'table', 'markdown')


Systems = Tuple[Type[BatchSystem], ...]


def _format_for(option: Option, system: Type[BatchSystem]) -> str:
    """How ``option`` appears in a script of ``system``, for help texts."""
    return system.keyword_help(option.name, option.metavar, option.directive)


def _help_systems(qtype: Optional[str]) -> Systems:
    """Every system, or the one named (OptionError names the known ones)."""
    return tuple(systems()) if qtype is None else (system_class(qtype),)


def _help_text(systems: Systems) -> str:
    lines = ['Keyword options (synonyms in brackets, default after "=").', '']
    for group in GROUPS:
        lines.append(group.capitalize())
        for option in OPTIONS.values():
            if option.group != group:
                continue
            title = option.name
            if option.synonyms:
                title += ' [' + ', '.join(option.synonyms) + ']'
            if option.default is not None:
                title += f' = {option.default!r}'
            lines.append(f'  {title}')
            lines.append(f'      {option.help}')
            lines.append(f'      accepts: {option.accepts}')
            for system in systems:
                lines.append(f'      {system.name + ":":8}{_format_for(option, system)}')
        lines.append('')
    lines += [system.help_note for system in systems if system.help_note]
    return '\n'.join(lines)


def _help_rows(systems: Systems) -> Tuple[List[str], List[List[str]]]:
    header = ['Keyword', 'Synonyms', 'Default', *[s.name.capitalize() for s in systems],
              'Accepts', 'Description']
    rows = []
    for option in OPTIONS.values():
        formats = [_format_for(option, s) for s in systems]
        rows.append([option.name, ', '.join(option.synonyms),
                     '' if option.default is None else repr(option.default),
                     *formats, option.accepts, option.help])
    return header, rows


def _is_directive_text(text: str) -> bool:
    return text.startswith(tuple(s.prefix + ' ' for s in systems() if s.prefix))


def _rst_cell(text: str) -> str:
    if not text:
        return ''
    if _is_directive_text(text):
        return f'``{text}``'
    return re.sub(r'([\\*`|_])', r'\\\1', text)


def _md_cell(text: str) -> str:
    text = text.replace('|', '\\|')
    return f'`{text}`' if _is_directive_text(text) else text


def _help_table(systems: Systems, markdown: bool) -> str:
    header, rows = _help_rows(systems)
    if markdown:
        lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
        lines += ['| ' + ' | '.join(_md_cell(c) for c in row) + ' |' for row in rows]
        for note in (_md_cell(s.help_note) for s in systems if s.help_note):
            lines += ['', note]
        return '\n'.join(lines) + '\n'
    lines = ['.. list-table:: Keyword options', '   :header-rows: 1', '']
    for row in [header] + rows:
        cells = [_rst_cell(c) for c in row]
        lines.append(f'   * - {cells[0]}')
        lines += [f'     - {cell}'.rstrip() for cell in cells[1:]]
    for note in (_rst_cell(s.help_note) for s in systems if s.help_note):
        lines += ['', note]
    return '\n'.join(lines) + '\n'


def option_help(qtype: Optional[str] = None, mode: str = 'string') -> Optional[str]:
    """Describe every keyword option.

    ``qtype`` limits the formats shown to one system (None: all of them). ``mode`` is
    'string' (return a readable listing), 'print' (print it, return None), 'table'
    (return a reStructuredText table) or 'markdown' (return a Markdown table).
    """
    if mode not in HELP_MODES:
        raise ValueError(f'unknown mode {mode!r}; accepted modes: {", ".join(HELP_MODES)}')
    systems = _help_systems(qtype)
    if mode in ('table', 'markdown'):
        return _help_table(systems, markdown=mode == 'markdown')
    text = _help_text(systems)
    if mode == 'print':
        print(text)
        return None
    return text

"""Help texts of the keyword options, rendered from the table in :mod:`cluster.options`.

:func:`option_help` lists every option with its synonyms, default, accepted values and
the line it becomes in each batch system's script header, as plain text (``cluster
options``), a reStructuredText table (``docs/gen_keywords.py``) or a Markdown table.
"""
# Not named option_help.py: importing a submodule sets it as an attribute of the package,
# which would replace the function cluster.option_help by the module.
from __future__ import annotations

import logging
import re
from typing import List, Optional, Tuple

from ..errors import OptionError
from .table import GROUPS, LIST_SEPARATOR, OPTIONS, PREFIX, QTYPES, Option

logger = logging.getLogger(__name__)

HELP_MODES: Tuple[str, ...] = ('string', 'print', 'table', 'markdown')


def _format_for(option: Option, qtype: str) -> str:
    """How ``option`` appears in a ``qtype`` script, for help texts."""
    if qtype == 'local':
        return option.local
    if not option.directive:
        return '(used by the job code; not a header line)'
    template = getattr(option, qtype)
    if template is None:
        return '(not available)'
    metavar = option.metavar
    if option.name == 'features':
        metavar = LIST_SEPARATOR[qtype].join(metavar.split(','))
    return f'{PREFIX[qtype]} {template.format(metavar)}'


def _help_qtypes(qtype: Optional[str]) -> Tuple[str, ...]:
    if qtype is None:
        return QTYPES
    if qtype not in QTYPES:
        raise OptionError(f'unknown qtype {qtype!r}; known: {", ".join(QTYPES)}')
    return (qtype,)


def _help_text(qtypes: Tuple[str, ...]) -> str:
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
            for qtype in qtypes:
                lines.append(f'      {qtype + ":":8}{_format_for(option, qtype)}')
        lines.append('')
    if 'torque' in qtypes:
        lines.append('On torque, nodes, cores and features form one line: '
                     '#PBS -l nodes=N:ppn=C:F1:F2.')
    return '\n'.join(lines)


def _help_rows(qtypes: Tuple[str, ...]) -> Tuple[List[str], List[List[str]]]:
    header = ['Keyword', 'Synonyms', 'Default', *[q.capitalize() for q in qtypes],
              'Accepts', 'Description']
    rows = []
    for option in OPTIONS.values():
        formats = [_format_for(option, q) for q in qtypes]
        rows.append([option.name, ', '.join(option.synonyms),
                     '' if option.default is None else repr(option.default),
                     *formats, option.accepts, option.help])
    return header, rows


def _is_directive_text(text: str) -> bool:
    return text.startswith(tuple(PREFIX.values()))


def _rst_cell(text: str) -> str:
    if not text:
        return ''
    if _is_directive_text(text):
        return f'``{text}``'
    return re.sub(r'([\\*`|_])', r'\\\1', text)


def _md_cell(text: str) -> str:
    text = text.replace('|', '\\|')
    return f'`{text}`' if _is_directive_text(text) else text


def _help_table(qtypes: Tuple[str, ...], markdown: bool) -> str:
    header, rows = _help_rows(qtypes)
    if markdown:
        lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
        lines += ['| ' + ' | '.join(_md_cell(c) for c in row) + ' |' for row in rows]
        return '\n'.join(lines) + '\n'
    lines = ['.. list-table:: Keyword options', '   :header-rows: 1', '']
    for row in [header] + rows:
        cells = [_rst_cell(c) for c in row]
        lines.append(f'   * - {cells[0]}')
        lines += [f'     - {cell}'.rstrip() for cell in cells[1:]]
    return '\n'.join(lines) + '\n'


def option_help(qtype: Optional[str] = None, mode: str = 'string') -> Optional[str]:
    """Describe every keyword option.

    ``qtype`` limits the formats shown to one system (None: all of them). ``mode`` is
    'string' (return a readable listing), 'print' (print it, return None), 'table'
    (return a reStructuredText table) or 'markdown' (return a Markdown table).
    """
    if mode not in HELP_MODES:
        raise ValueError(f'unknown mode {mode!r}; accepted modes: {", ".join(HELP_MODES)}')
    qtypes = _help_qtypes(qtype)
    if mode in ('table', 'markdown'):
        return _help_table(qtypes, markdown=mode == 'markdown')
    text = _help_text(qtypes)
    if mode == 'print':
        print(text)
        return None
    return text

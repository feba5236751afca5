"""The keyword options of a job: the table, the value parsers, and the help.

* :mod:`~cluster.options.table`: ``OPTIONS`` (names, synonyms, checks, defaults, help),
  :func:`check_arguments`, and the header functions :func:`option_to_string` and
  :func:`options_to_string` (which hand checked values to the batch system's renderer);
* :mod:`~cluster.options.values`: the parsers that check and normalise each value;
* :mod:`~cluster.options.docs`: :func:`option_help`, the listing and the docs table.

Every public name is importable from here: ``from cluster.options import check_arguments``.
"""
from __future__ import annotations

from .docs import HELP_MODES, option_help
from .table import (GROUPS, OPTIONS, SYNONYMS, Option, canonical, check_arguments,
                    option_to_string, options_to_string)

__all__ = ['GROUPS', 'HELP_MODES', 'OPTIONS', 'SYNONYMS', 'Option', 'canonical',
           'check_arguments', 'option_help', 'option_to_string', 'options_to_string']

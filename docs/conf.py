"""Sphinx configuration; the keyword table is generated from cluster/options.py at build time."""
import os
import sys

sys.path.insert(0, os.path.abspath('..'))
sys.path.insert(0, os.path.abspath('.'))

import gen_keywords  # noqa: E402

gen_keywords.write_table()

project = 'cluster'
author = 'the cluster developers'
extensions = ['sphinx.ext.autodoc', 'sphinx.ext.napoleon']
exclude_patterns = ['_build']
html_theme = 'alabaster'

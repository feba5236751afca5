"""Sphinx configuration; the keyword table is generated from cluster/options.py at build time.

``sphinx-build -W -n -b html docs OUT`` must pass (tests/test_docs.py runs it): every
reference resolves. A short name (``JobInfo`` in a docstring of ``cluster.job``) resolves
to the one documented object of that name.
"""
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
# the standard library is not documented here (no network for intersphinx)
nitpick_ignore = [('py:class', name) for name in (
    'os.PathLike', 'configparser.ConfigParser', 'threading.Thread', 'subprocess.Popen',
    'concurrent.futures._base.Future', 'Future', 'enum.Enum', 'grpc.StatusCode', 'grpc.RpcError')]


def _short_names(app, env, node, contnode):
    """Resolve ``Name`` or ``module.Name`` to the one documented object it names."""
    if node.get('refdomain') != 'py':
        return None
    target = node['reftarget'].lstrip('.~')
    domain = env.get_domain('py')
    names = list(domain.objects) + list(domain.modules)
    matches = [n for n in names if n == target or n.endswith('.' + target)]
    if not matches:                      # the same object under its public name
        last = target.rsplit('.', 1)[-1]
        matches = [n for n in names if n.rsplit('.', 1)[-1] == last]
        if len({domain.objects[n].node_id for n in matches if n in domain.objects}) != 1:
            return None
    for name in sorted(matches, key=len):
        ref = domain.resolve_xref(env, node['refdoc'], app.builder, node['reftype'], name,
                                  node, contnode)
        if ref is not None:
            return ref
    return None


def setup(app):
    app.connect('missing-reference', _short_names)

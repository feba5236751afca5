"""The shape of the house, checked with ``ast`` over the packages ``cluster`` and ``xenon_backend``.

Source files only; the generated ``xenon_backend/proto/`` is left out. The rules (issue 12):

* **no import cycle** among the modules, counting imports inside functions. A relative import is
  resolved; ``from pkg import name`` where ``pkg.name`` is a module counts as importing that module,
  otherwise as importing ``pkg``. ``import a.b`` counts as importing ``a.b`` (the parents it also
  runs are not counted). Only the body of ``if TYPE_CHECKING:`` is exempt.
* **xenon_backend stands alone**: it imports nothing from ``cluster``.
* **no batch system named outside its own modules** (``cluster/batch/<system>.py``, its helpers
  ``cluster/batch/_<system>_*.py``, the qsub family's ``_qsub.py``, and the registry entries
  ``SYSTEMS`` and ``SETTINGS``): no string literal (docstrings aside) and no name used, defined
  or imported holds ``slurm``, ``torque``, ``pbs``, ``sge``, one of their commands (``sbatch``,
  ``qsub``, ...) or directives (``#SBATCH``, ``#$``) as a word, case-insensitive (a word: not
  preceded or followed by a letter, so ``SLURM_JOB_ID`` names Slurm and ``message`` does not name
  SGE). The shared modules of ``cluster/batch/`` are generic code too.
* **small pieces**: no module over 400 lines, no function over 60 (``def`` line to last line).
* **a function-level import is for an optional or heavy dependency and says which**, with a
  trailing comment on one of its lines: ``# heavy: grpc`` or ``# optional: tqdm`` (the tag, a
  colon, the name of the dependency).

Each rule is one test that prints the offending places, and each is shown to catch a violation in
a tiny package made in ``tmp_path``.
"""
import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ('cluster', 'xenon_backend')
EXCLUDED = ('xenon_backend/proto',)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
SYSTEM_WORDS = ('slurm', 'torque', 'pbs', 'sge', 'sbatch', 'squeue', 'scancel', 'sacct', 'sinfo',
                'scontrol', 'srun', 'salloc', 'qsub', 'qstat', 'qdel', 'qalter', 'qhold', 'qrls',
                'pbsnodes', 'qacct', 'qconf', 'qmod', 'grid engine', '#SBATCH', '#PBS')
#: a system word (not preceded or followed by a letter), or a Grid Engine directive ``#$ ``
SYSTEM_NAME = re.compile(r'(?<![a-z])(%s)(?![a-z])|#\$ ' % '|'.join(SYSTEM_WORDS), re.IGNORECASE)
DEPENDENCY_COMMENT = re.compile(r'#\s*(heavy|optional):\s*[\w.-]+')


@dataclass
class Module:
    name: str
    path: Path  # relative to the root
    tree: ast.Module
    lines: List[str]

    @property
    def package(self) -> str:
        return self.name if self.path.name == '__init__.py' else self.name.rpartition('.')[0]


@dataclass
class Import:
    module: Module
    line: int
    target: str  # absolute dotted name as written and resolved
    names: Tuple[str, ...]  # for ``from target import names``; () for ``import target``
    in_function: bool

    @property
    def where(self) -> str:
        return f'{self.module.path}:{self.line}'


def load(root: Path = ROOT, packages=PACKAGES, excluded=EXCLUDED) -> Dict[str, Module]:
    """Every source module of ``packages`` under ``root``, by dotted name."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob('*.py')):
            rel = path.relative_to(root)
            if any(rel.as_posix().startswith(prefix + '/') for prefix in excluded):
                continue
            parts = rel.with_suffix('').parts
            name = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
            text = path.read_text()
            modules[name] = Module(name, rel, ast.parse(text, str(rel)), text.splitlines())
    return modules


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING'
            or isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def _walk(node: ast.AST, in_function: bool = False) -> Iterator[Tuple[ast.AST, bool]]:
    """Every node under ``node`` with whether it sits in a function; skips TYPE_CHECKING bodies."""
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            for other in child.orelse:
                yield other, in_function
                yield from _walk(other, in_function)
            continue
        yield child, in_function
        yield from _walk(child, in_function
                         or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))


def imports(module: Module) -> Iterator[Import]:
    for node, in_function in _walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, node.lineno, alias.name, (), in_function)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ''
            if node.level:
                base = module.package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([target] if target else []))
            yield Import(module, node.lineno, target, tuple(a.name for a in node.names),
                         in_function)


def _edges(imp: Import, modules: Dict[str, Module]) -> Iterator[str]:
    """The modules of ``modules`` that ``imp`` imports."""
    wholes = [n for n in (f'{imp.target}.{name}' for name in imp.names) if n in modules]
    if wholes:
        yield from wholes
    if len(wholes) < len(imp.names) or not imp.names:
        target = imp.target
        while target and target not in modules:
            target = target.rpartition('.')[0]
        if target:
            yield target


def graph(modules: Dict[str, Module]) -> Dict[str, Dict[str, Import]]:
    """module -> {imported module: the first import statement that does it}."""
    edges: Dict[str, Dict[str, Import]] = {name: {} for name in modules}
    for name, module in modules.items():
        for imp in imports(module):
            for target in _edges(imp, modules):
                edges[name].setdefault(target, imp)
    return edges


def _cycle_through(start: str, edges, allowed: Set[str]) -> List[str]:
    """A shortest path start -> ... -> start within ``allowed`` (breadth first)."""
    parent: Dict[str, Optional[str]] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in edges[node]:
                if nxt == start:
                    path = [start, node]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return path[::-1] if node != start else [start, start]
                if nxt in allowed and nxt not in parent:
                    parent[nxt] = node
                    following.append(nxt)
        frontier = following
    return []


def find_cycles(modules: Dict[str, Module]) -> List[str]:
    """One line per cycle: each module of a strongly connected group is shown on a shortest cycle."""
    edges = graph(modules)
    reach = {name: _reachable(name, edges) for name in modules}
    found, seen = [], set()
    for name in sorted(modules):
        group = frozenset(n for n in reach[name] if name in reach[n])
        if not group or group in seen:
            continue
        seen.add(group)
        cycle = _cycle_through(name, edges, set(group))
        steps = ', '.join(f'{a} -> {b} ({edges[a][b].where})' for a, b in zip(cycle, cycle[1:]))
        found.append(f'cycle among {len(group)} modules {sorted(group)}: {steps}')
    return found


def _reachable(start: str, edges) -> Set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def find_cluster_imports(modules: Dict[str, Module]) -> List[str]:
    return [f'{imp.where}: imports {imp.target}'
            for module in modules.values() if module.name.split('.')[0] == 'xenon_backend'
            for imp in imports(module)
            if imp.target == 'cluster' or imp.target.startswith('cluster.')]


def _docstrings(tree: ast.Module) -> Set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _registry(modules: Dict[str, Module]) -> Dict[str, ast.expr]:
    """The values assigned to ``SYSTEMS`` and ``SETTINGS`` in ``cluster/batch/__init__.py``."""
    values = {}
    for node in ast.walk(modules['cluster.batch'].tree):
        if not isinstance(node, (ast.Assign, ast.AnnAssign)):
            continue
        for target in getattr(node, 'targets', None) or [node.target]:
            if isinstance(target, ast.Name) and target.id in ('SYSTEMS', 'SETTINGS'):
                values[target.id] = node.value
    assert 'SYSTEMS' in values, 'no SYSTEMS = {...} in cluster/batch/__init__.py'
    return values


def _own_module(name: str, systems: Tuple[str, ...]) -> bool:
    """A module that may name batch systems: a system's own (``cluster.batch.<system>``, its
    helpers ``cluster.batch._<system>_*``) and the qsub family's mixin ``cluster.batch._qsub``."""
    if not name.startswith('cluster.batch.'):
        return False
    leaf = name.rpartition('.')[2]
    return leaf in systems or leaf == '_qsub' or any(
        leaf.startswith(f'_{system}_') for system in systems)


def _code_text(node: ast.AST) -> Optional[str]:
    """The text a node puts in the code: a string, a name used, defined or imported."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.alias)):
        return node.name
    return getattr(node, 'id', None) if isinstance(node, ast.Name) else getattr(node, 'attr', None)


def find_batch_names(modules: Dict[str, Module]) -> List[str]:
    found = []
    registry = _registry(modules)
    systems = tuple(ast.literal_eval(registry['SYSTEMS']))
    entries = {id(inner) for value in registry.values() for inner in ast.walk(value)}
    for module in modules.values():
        if _own_module(module.name, systems):
            continue
        skipped = _docstrings(module.tree) | entries   # entries: nodes of cluster.batch only
        for node in sorted(ast.walk(module.tree), key=lambda n: getattr(n, 'lineno', 0)):
            text = None if id(node) in skipped else _code_text(node)
            match = SYSTEM_NAME.search(text) if isinstance(text, str) else None
            if match:
                found.append(f'{module.path}:{node.lineno}: {match.group(0)!r} in {text!r}')
    return found


def find_long_modules(modules: Dict[str, Module]) -> List[str]:
    return [f'{m.path}:1: {len(m.lines)} lines' for m in modules.values()
            if len(m.lines) > MAX_MODULE_LINES]


def find_long_functions(modules: Dict[str, Module]) -> List[str]:
    return [f'{m.path}:{node.lineno}: {node.name} has {node.end_lineno - node.lineno + 1} lines'
            for m in modules.values() for node in ast.walk(m.tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def find_local_imports(modules: Dict[str, Module]) -> List[str]:
    found = []
    for module in modules.values():
        for node, in_function in _walk(module.tree):
            if in_function and isinstance(node, (ast.Import, ast.ImportFrom)):
                text = module.lines[node.lineno - 1:node.end_lineno]
                if not any(DEPENDENCY_COMMENT.search(line) for line in text):
                    found.append(f'{module.path}:{node.lineno}: {text[0].strip()}')
    return found


# --- the rules, on the real packages --------------------------------------------------------

MODULES = load()


def _check(found: List[str]) -> None:
    print('\n'.join(found))
    assert not found, f'{len(found)} violations:\n' + '\n'.join(found)


def test_no_import_cycles():
    _check(find_cycles(MODULES))


def test_xenon_backend_imports_nothing_from_cluster():
    _check(find_cluster_imports(MODULES))


def test_batch_systems_are_named_only_in_their_own_modules():
    _check(find_batch_names(MODULES))


def test_no_module_over_400_lines():
    _check(find_long_modules(MODULES))


def test_no_function_over_60_lines():
    _check(find_long_functions(MODULES))


def test_function_level_imports_name_their_dependency():
    _check(find_local_imports(MODULES))


def test_the_layout_in_the_docs_is_ls_cluster():
    """docs/api.rst shows ``ls cluster/`` with a line per entry: the same entries, ten or
    fewer, each a package or a module of the source tree."""
    text = (ROOT / 'docs' / 'api.rst').read_text()
    listing = text[text.index('**The layout.**'):text.index('**How a job flows.**')]
    shown = re.findall(r'^   (\S+)\s{2,}\S', listing, re.M)
    present = sorted(p.name + ('/' if p.is_dir() else '') for p in (ROOT / 'cluster').iterdir()
                     if p.suffix == '.py' or (p.is_dir() and (p / '__init__.py').exists()))
    assert sorted(shown) == present
    assert len(present) <= 10, present


def test_the_packages_are_found():
    assert {'cluster', 'cluster.batch', 'cluster.batch.slurm', 'xenon_backend'} <= set(MODULES)
    assert not any(name.startswith('xenon_backend.proto') for name in MODULES)


# --- the checker catches what it should, on tiny packages --------------------------------------

def _package(tmp_path: Path, files: Dict[str, str]) -> Dict[str, Module]:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return load(tmp_path)


def test_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
    modules = _package(tmp_path, {
        'cluster/__init__.py': '',
        'cluster/a.py': 'from . import b\n',
        'cluster/b.py': 'def f():\n    from .sub import c\n',
        'cluster/sub/__init__.py': '',
        'cluster/sub/c.py': 'import cluster.a\n',
        'cluster/d.py': 'from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import e\n',
        'cluster/e.py': 'from .d import something\n',
        'xenon_backend/__init__.py': '',
    })
    found = find_cycles(modules)
    assert len(found) == 1, found
    assert "['cluster.a', 'cluster.b', 'cluster.sub.c']" in found[0]
    assert 'cluster.b -> cluster.sub.c (cluster/b.py:2)' in found[0]


def test_checker_finds_xenon_backend_importing_cluster(tmp_path):
    modules = _package(tmp_path, {
        'cluster/__init__.py': 'import xenon_backend\n',
        'xenon_backend/__init__.py': '',
        'xenon_backend/tls.py': 'def f():\n    from cluster.run import cmd\n',
    })
    assert find_cluster_imports(modules) == ['xenon_backend/tls.py:2: imports cluster.run']


def test_checker_finds_a_batch_system_named_outside_its_own_modules(tmp_path):
    modules = _package(tmp_path, {
        'cluster/__init__.py': '"""Runs on Slurm."""\n',
        'cluster/cli.py': ('"""Choose slurm."""\n'
                           'CHOICES = ("local", "SLURM")\n'
                           'ENV = f"{1}PBS_JOBID"\n'
                           'FINE = "message sbatchy"\n'),
        'cluster/batch/__init__.py': ('SYSTEMS: dict = {"slurm": "slurm:Slurm"}\n'
                                      'SETTINGS: dict = {"slurm": {}}\n'),
        'cluster/batch/_shared.py': ('def slurm_limit():\n'
                                     '    """Asks scontrol."""\n'
                                     '    return ["#$ -N x"]\n'),
        'cluster/batch/slurm.py': 'COMMAND = "sbatch"\n',
        'cluster/batch/_slurm_arrays.py': 'ARGV = ["scontrol", "show", "config"]\n',
        'cluster/batch/_qsub.py': 'FAMILY = "qsub"\n',
        'xenon_backend/__init__.py': '',
    })
    found = sorted(find_batch_names(modules))
    assert found == ["cluster/batch/_shared.py:1: 'slurm' in 'slurm_limit'",
                     "cluster/batch/_shared.py:3: '#$ ' in '#$ -N x'",
                     "cluster/cli.py:2: 'SLURM' in 'SLURM'", "cluster/cli.py:3: 'PBS' in 'PBS_JOBID'"]


def test_checker_finds_a_long_module_and_a_long_function(tmp_path):
    body = ''.join(f'    x = {i}\n' for i in range(60))
    modules = _package(tmp_path, {
        'cluster/__init__.py': 'X = 1\n' * 401,
        'cluster/ok.py': 'X = 1\n' * 340 + 'def fits():\n' + body[:-len('    x = 59\n')],
        'cluster/long.py': 'class C:\n    def long(self):\n' + body.replace('    ', '        '),
        'xenon_backend/__init__.py': '',
    })
    assert find_long_modules(modules) == ['cluster/__init__.py:1: 401 lines']
    assert find_long_functions(modules) == ['cluster/long.py:2: long has 61 lines']


def test_checker_finds_an_unexplained_function_level_import(tmp_path):
    modules = _package(tmp_path, {
        'cluster/__init__.py': 'import os\n',
        'cluster/a.py': ('def f():\n'
                         '    import grpc  # heavy: grpc\n'
                         '    from tqdm import (tqdm,  # optional: tqdm\n'
                         '                      trange)\n'
                         '    from . import b  # just because\n'
                         '    import json\n'),
        'xenon_backend/__init__.py': '',
    })
    assert find_local_imports(modules) == ['cluster/a.py:5: from . import b  # just because',
                                           'cluster/a.py:6: import json']

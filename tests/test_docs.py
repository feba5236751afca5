"""Every code block of the README and docs/ runs as written; the docs build clean.

Blocks are extracted from the Markdown fences and reStructuredText literal blocks
(``::`` and ``.. code-block::``). Python blocks run as scripts in a fresh directory, in
local mode (no sbatch/qsub on the PATH) and on the real Slurm; a line ``expr  # value``
whose comment is a Python literal is checked (``expr == value``). Shell blocks run with
``bash -e``; INI blocks are parsed and checked as a config file. A block that cannot run
here is listed in NOT_RUN with the reason and the test that covers it instead.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, NamedTuple, Optional

import pytest

from cluster import config_file
from cluster.config_file import ini as _ini

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / 'README.md', *sorted((ROOT / 'docs').rglob('*.rst'))]
BATCH_COMMANDS = ('sbatch', 'squeue', 'sacct', 'scontrol', 'scancel', 'qsub', 'qstat', 'qdel')


class Block(NamedTuple):
    source: str        # path relative to the repository, and line
    line: int
    lang: str          # 'python', 'sh', 'ini' or 'text'
    code: str

    @property
    def key(self) -> str:
        return f'{self.source}: {self.code.splitlines()[0]}'


#: blocks that do not run here, by file and first line: why, and what covers them
NOT_RUN = {
    'docs/api.rst: __init__.py   the public API (Job, submit, Queue, wait, ...)':
        'a listing, not code: test_architecture.py::test_the_layout_in_the_docs_is_ls_cluster',
    'README.md: bash scripts/install.sh && .venv/bin/cluster demo     # install, then run the '
    'demo pipeline locally': 'the install itself (scripts/install.sh; .ci/run runs both lines)',
    'docs/quickstart.rst: bash scripts/install.sh && .venv/bin/cluster demo':
        'the install itself (README top block)',
    'docs/xenon/quickstart.rst: bash scripts/setup_xenon.sh': 'the set-up itself',
    'docs/remote.rst: mkdir -p ~/.ssh && chmod 700 ~/.ssh && ssh-keyscan login.hpc.example.org '
    '| sort -s -k2,2 >> ~/.ssh/known_hosts': 'a host of your own; the loopback form below runs',
    'docs/remote.rst: python docs/examples/remote_pipeline.py hpc':
        'test_remote.py::test_the_docs_example_runs',
    'docs/remote.rst: cluster submit --profile hpc -- ./analyse.sh input.txt':
        'a cluster of your own; test_remote.py drives these commands against the test sshd',
    'docs/xenon/adaptors.rst: Scheduler.create(\'ssh\', \'cluster.example.org:22\',':
        'a fragment (names a host of your own)',
    'docs/xenon/quickstart.rst: python docs/xenon/examples/quickstart.py '
    'clustertest@127.0.0.1:2222 /var/lib/cluster-test/ssh/id_ed25519':
        'test_xenon_docs.py runs docs/xenon/examples/quickstart.py',
    'docs/xenon/streaming.rst: job, output_stream = scheduler.submit_interactive_job('
    'description, stdin_stream)': 'a fragment of examples/streaming.py',
    'docs/xenon/streaming.rst: cd docs/xenon/examples && python streaming.py':
        'test_xenon_docs.py::test_the_streaming_example_runs',
    'docs/xenon/streaming.rst: sent:     Gur dhvpx oebja sbk':
        'output, checked by test_xenon_docs.py::test_the_streaming_example_runs',
}


def _lang(given: Optional[str], code: str) -> str:
    if given in ('python', 'py'):
        return 'python'
    if given in ('ini', 'cfg'):
        return 'ini'
    if given in ('sh', 'bash', 'shell', 'console'):
        return 'sh'
    if code.lstrip().startswith('['):
        return 'ini'
    try:
        ast.parse(code)
        return 'python'
    except SyntaxError:
        pass
    first = code.split()[0]
    return 'sh' if shutil.which(first) or first in ('cluster', 'cd', 'id=$(cluster') \
        or '/' in first else 'text'


def rst_blocks(path: Path) -> List[Block]:
    lines = path.read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        line = lines[index]
        directive = re.match(r'\s*\.\. code-block::\s*(\S+)', line)
        literal = line.rstrip().endswith('::') and not re.match(r'\s*\.\. ', line)
        index += 1
        if not (directive or literal):
            continue
        indent = len(line) - len(line.lstrip())
        while index < len(lines) and (not lines[index].strip()
                                      or lines[index].strip().startswith(':')):
            index += 1
        start, body = index, []
        while index < len(lines) and (not lines[index].strip()
                                      or len(lines[index]) - len(lines[index].lstrip()) > indent):
            body.append(lines[index])
            index += 1
        code = textwrap.dedent('\n'.join(body)).strip('\n')
        if code:
            rel = str(path.relative_to(ROOT))
            found.append(Block(rel, start + 1, _lang(directive and directive.group(1), code),
                               code))
    return found


def markdown_blocks(path: Path) -> List[Block]:
    text = path.read_text()
    found = []
    for match in re.finditer(r'^```(\w*)\n(.*?)^```', text, re.S | re.M):
        line = text[:match.start()].count('\n') + 2
        code = match.group(2).strip('\n')
        found.append(Block(str(path.relative_to(ROOT)), line,
                           _lang(match.group(1) or None, code), code))
    return found


def all_blocks() -> List[Block]:
    blocks = []
    for path in SOURCES:
        blocks += markdown_blocks(path) if path.suffix == '.md' else rst_blocks(path)
    return [b for b in blocks if not b.source.startswith('docs/_build')]


BLOCKS = all_blocks()
TO_RUN = [b for b in BLOCKS if b.key not in NOT_RUN]


def with_checks(code: str) -> str:
    """``expr  # literal`` lines become ``assert expr == literal`` (shown on failure)."""
    out = []
    for line in code.splitlines():
        match = re.match(r'^(?P<expr>[^#\s][^#]*?)\s+#\s*(?P<value>.+?)\s*$', line)
        if match:
            try:
                tree = ast.parse(match.group('expr'))
                wanted = ast.literal_eval(match.group('value'))
            except (SyntaxError, ValueError):
                tree = None
            if tree and len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
                expr = match.group('expr')
                line = (f'__got = {expr}\nassert __got == {wanted!r}, '
                        f'f"{{__got!r}} != {wanted!r} ({expr.strip()})"')
        out.append(line)
    return '\n'.join(out) + '\n'


def path_without(tmp_path: Path, hidden: tuple) -> str:
    """A PATH on which the batch commands are missing, so qtype is detected as local."""
    shim = tmp_path / 'path-without-batch'
    shim.mkdir(exist_ok=True)
    for directory in os.environ.get('PATH', '').split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = os.path.join(directory, name)
            if name not in hidden and not (shim / name).exists() and os.access(target, os.X_OK):
                os.symlink(target, shim / name)
    return f'{os.path.dirname(sys.executable)}{os.pathsep}{shim}'


def run_env(tmp_path: Path, mode: str) -> dict:
    env = dict(os.environ, CLUSTER_CONFIG=str(tmp_path / 'cluster.ini'),
               CLUSTER_STATE_DIR=str(tmp_path / 'state'),   # the block's own job records
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')])))
    if mode == 'local':
        env['PATH'] = path_without(tmp_path, BATCH_COMMANDS)
    else:
        env['PATH'] = f'{os.path.dirname(sys.executable)}{os.pathsep}{env["PATH"]}'
    return env


def test_every_block_is_run_or_listed_with_a_reason():
    keys = {b.key for b in BLOCKS}
    assert not set(NOT_RUN) - keys, f'stale NOT_RUN entries: {set(NOT_RUN) - keys}'
    kinds = {b.lang for b in TO_RUN}
    assert kinds <= {'python', 'sh', 'ini'}, [b for b in TO_RUN if b.lang == 'text']
    assert any(b.source == 'README.md' and b.lang == 'python' for b in TO_RUN)
    assert len([b for b in TO_RUN if b.lang == 'python']) >= 4


def _block_id(block: Block) -> str:
    return f'{block.source}:{block.line}'


SUBMITS = re.compile(r'cluster\.(Job|submit|Executor)\b|cluster (submit|wait|queue)\b')


def _python_cases() -> list:
    """Each Python block in local mode; a block that submits, on Slurm as well."""
    cases = []
    for block in (b for b in TO_RUN if b.lang == 'python'):
        cases.append(pytest.param(block, 'local', id=f'local-{_block_id(block)}'))
        if SUBMITS.search(block.code):
            cases.append(pytest.param(block, 'slurm', id=f'slurm-{_block_id(block)}',
                                      marks=pytest.mark.slurm))
    return cases


@pytest.mark.parametrize('block, mode', _python_cases())
def test_python_block_runs(block, mode, tmp_path):
    if mode == 'slurm':
        from conftest import _require_slurm
        _require_slurm('slurm')
    script = tmp_path / 'example.py'
    script.write_text(with_checks(block.code))
    work = tmp_path / 'work'
    work.mkdir()
    done = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True,
                          text=True, timeout=600, env=run_env(tmp_path, mode))
    assert done.returncode == 0, f'{_block_id(block)} failed:\n{done.stdout}\n{done.stderr}'


@pytest.mark.slurm
@pytest.mark.parametrize('block', [b for b in TO_RUN if b.lang == 'sh'], ids=_block_id)
def test_shell_block_runs(block, tmp_path):
    from conftest import _require_slurm
    if SUBMITS.search(block.code):
        _require_slurm('slurm')       # the `cluster` commands of the docs submit to Slurm
    env = run_env(tmp_path, 'slurm')
    env['HOME'] = str(tmp_path / 'home')                 # ~/.ssh and the like: a fresh one
    os.makedirs(env['HOME'])
    work = tmp_path / 'work'
    work.mkdir()
    done = subprocess.run(['bash', '-e', '-c', block.code], cwd=work, capture_output=True,
                          text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f'{_block_id(block)} failed:\n{done.stdout}\n{done.stderr}'
    if 'ssh-keyscan' in block.code:
        known = (tmp_path / 'home' / '.ssh' / 'known_hosts').read_text()
        assert '[127.0.0.1]:2222 ' in known and '[localhost]:2222 ' in known
        from cluster.run.remote.known_hosts import first_key_types
        first = first_key_types('localhost', 2222, str(tmp_path / 'home/.ssh/known_hosts'))
        assert all(kind.startswith('ecdsa-') for kind in first.values()), first


@pytest.mark.parametrize('block', [b for b in TO_RUN if b.lang == 'ini'], ids=_block_id)
def test_config_block_parses_as_written(block, tmp_path):
    path = tmp_path / 'pasted.ini'
    path.write_text(block.code + '\n')
    checked = config_file.check_file(str(path))        # every key is checked
    raw = _ini.read(str(path)).raw
    assert any(section.startswith('profile.') for section in raw)
    for section, keys in raw.items():
        assert section in checked
        for key, value in keys.items():                # inline comments are not values
            assert '#' not in value and ';' not in value, (section, key, value)


def test_the_inline_comments_of_the_remote_profile_are_comments(tmp_path, monkeypatch):
    [block] = [b for b in TO_RUN if b.source == 'docs/remote.rst' and b.lang == 'ini']
    path = tmp_path / 'pasted.ini'
    path.write_text(block.code + '\n')
    monkeypatch.setenv('CLUSTER_CONFIG', str(path))
    hpc = config_file.get_profile('hpc')
    assert hpc.connection['qtype'] == 'slurm' and hpc.connection['python'] == '/usr/bin/python3'
    assert hpc.connection['key'] == '~/.ssh/id_ed25519' and hpc.connection['strict_host_key']
    config_file.set_profile('hpc', {'cores': 4})
    text = path.read_text()
    assert 'cores = 4\n' in text
    assert 'qtype = slurm                 # or torque' in text      # comments stay


# -- ~cluster.example, copied as it is ------------------------------------------------------

@pytest.mark.slurm
def test_the_example_config_runs_a_job_with_each_profile_on_slurm(tmp_path):
    from conftest import _require_slurm
    _require_slurm('slurm')
    config = tmp_path / '.cluster'
    shutil.copy(ROOT / '~cluster.example', config)
    env = dict(run_env(tmp_path, 'slurm'), CLUSTER_CONFIG=str(config))
    code = textwrap.dedent('''
        import cluster, sys
        from cluster import config_file
        from cluster.config_file import ini as _ini
        names = sorted(config_file.get_profile())
        local = [n for n in names if config_file.get_profile(n).remote is None]
        remote = [n for n in names if n not in local]
        jobs = [cluster.Job(f'echo {n}', name=f'p-{n}', profile=n, qtype='slurm').submit()
                for n in local]
        for name, job in zip(local, jobs):
            print(name, job.get())
        print('remote', remote)
    ''')
    done = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name in ('default', 'small', 'large', 'everything'):
        assert f"{name} (0, '{name}\\n', '')" in lines, done.stdout
    assert lines[-1] == "remote ['hpc']"          # a cluster of your own: parsed, not run
    assert 'WARNING' not in done.stderr, done.stderr


# -- the docs build clean --------------------------------------------------------------------

def test_sphinx_build_is_clean_with_nitpicks(tmp_path):
    sphinx = shutil.which('sphinx-build', path=os.path.dirname(sys.executable))
    assert sphinx, 'pip install -e .[test] installs sphinx'
    done = subprocess.run([sphinx, '-W', '-n', '-E', '-q', '-b', 'html', str(ROOT / 'docs'),
                           str(tmp_path / 'html')], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'html' / 'api.html').exists()
    api = (tmp_path / 'html' / 'api.html').read_text()
    assert 'xenon_backend.init' in api and 'cluster.batch.JobInfo' in api

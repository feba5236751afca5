"""cluster.run: cmd, which, open_zipped, split_file."""
import bz2
import gzip
import io
import lzma

import pytest

from cluster.run.errors import CommandError
from cluster.run import cmd, open_zipped, split_file, which


def test_cmd_returns_code_and_output():
    assert cmd('echo hi') == (0, 'hi\n', '')
    assert cmd(['sh', '-c', 'echo out; echo err >&2; exit 3']) == (3, 'out\n', 'err\n')


def test_cmd_appends_args_without_a_shell(tmp_path):
    code, out, _ = cmd('printf %s', args=['$(touch pwned); x'], cwd=str(tmp_path))
    assert (code, out) == (0, '$(touch pwned); x')
    assert not (tmp_path / 'pwned').exists()


def test_cmd_writes_to_given_streams():
    out, err = io.StringIO(), io.StringIO()
    cmd(['sh', '-c', 'echo a; echo b >&2'], stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == ('a\n', 'b\n')


def test_cmd_check_raises_with_command_code_and_output():
    with pytest.raises(CommandError) as caught:
        cmd(['sh', '-c', 'echo nope >&2; exit 4'], check=True)
    error = caught.value
    assert (error.code, error.stderr) == (4, 'nope\n')
    assert 'exit code 4' in str(error) and 'nope' in str(error) and 'sh -c' in str(error)


def test_cmd_missing_program_and_timeout():
    assert cmd('no-such-program-xyz')[0] == 127
    code, _, err = cmd(['sleep', '5'], timeout=0.2)
    assert code == 124 and 'timed out' in err


def test_cmd_retries(tmp_path):
    counter = tmp_path / 'n'
    script = f'echo x >> {counter}; [ $(wc -l < {counter}) -ge 2 ]'
    assert cmd(['sh', '-c', script], tries=3)[0] == 0
    assert counter.read_text().count('x') == 2


def test_which():
    assert which('sh').endswith('/sh')
    assert which('no-such-program-xyz') is None
    assert which('/bin/sh') == '/bin/sh'


@pytest.mark.parametrize('ext,opener', [('', open), ('.gz', gzip.open), ('.bz2', bz2.open),
                                        ('.xz', lzma.open)])
def test_open_zipped_reads_every_format(tmp_path, ext, opener):
    path = tmp_path / f'data.txt{ext}'
    with opener(path, 'wt') as handle:
        handle.write('a\nb\n')
    with open_zipped(str(path)) as handle:
        assert handle.read() == 'a\nb\n'
    with open_zipped(str(path), 'rb') as handle:
        assert handle.read() == b'a\nb\n'


def test_split_file_keeps_header_and_every_line(tmp_path):
    source = tmp_path / 'table.tsv.gz'
    with gzip.open(source, 'wt') as handle:
        handle.write('head\n' + ''.join(f'{i}\n' for i in range(10)))
    parts = split_file(str(source), 3, outpath=str(tmp_path / 'out'))
    texts = [open(p).read().splitlines() for p in parts]
    assert [p.rsplit('/', 1)[1] for p in parts] == ['table.tsv.1', 'table.tsv.2', 'table.tsv.3']
    assert all(lines[0] == 'head' for lines in texts)
    assert [len(lines) - 1 for lines in texts] == [4, 3, 3]
    assert [x for lines in texts for x in lines[1:]] == [str(i) for i in range(10)]


def test_split_file_without_header_and_bad_parts(tmp_path):
    source = tmp_path / 'plain.txt'
    source.write_text('1\n2\n3\n')
    parts = split_file(str(source), 2, keep_header=False)
    assert [open(p).read() for p in parts] == ['1\n2\n', '3\n']
    with pytest.raises(ValueError, match='parts must be at least 1'):
        split_file(str(source), 0)

"""The `cluster` command: options, profiles, config, submit, queue, wait, clean and demo;
the commands for recorded jobs (jobs, get, resubmit, cancel) are :mod:`cluster.job.cli_jobs`."""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from typing import Any, Dict, List, Optional, Sequence

from .. import config_file
from ..batch import SYSTEMS
from .cli_jobs import add_commands, table as _table
from .demo import run_demo
from .progress import wait_showing
from ..run.errors import ClusterError
from .api import clean_dir
from .core import Job
from ..options import option_help
from ..queue import Queue

logger = logging.getLogger(__name__)
#: the ``--qtype`` choices: every system of the registry
QTYPES = tuple(SYSTEMS)
DESCRIPTION = ('Write a pipeline once; run it locally, on a batch system, or on a remote '
               'cluster. Commands: options, profile, config, submit, queue, wait, jobs, get, '
               'resubmit, cancel, clean, demo.')


class _Parser(argparse.ArgumentParser):
    """Bad input: exit 2 with one line that says what is wrong."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f'{self.prog}: error: {message} (see --help)\n')
        sys.exit(2)


def _keywords(pairs: Sequence[str]) -> Dict[str, Any]:
    """Parse ``key=value`` words; values stay strings and are checked by the option table."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not key:
            raise ClusterError(f'expected key=value, got {pair!r}')
        result[key.strip()] = value.strip()
    return result


def _cmd_options(args: argparse.Namespace) -> None:
    print(option_help(qtype=args.qtype, mode='table' if args.table else 'string'))


def _cmd_profile(args: argparse.Namespace) -> None:
    if args.action == 'list':
        for name, profile in sorted(config_file.get_profile().items()):
            print(f'{name}: {profile.args}')
        return
    if not args.name:
        raise ClusterError(f'profile {args.action} needs a profile NAME')
    if args.action == 'show':
        profile = config_file.get_profile(args.name)
        print(f'[{config_file.PROFILE_PREFIX}{profile.name}]')
        for key, value in profile.to_dict().items():
            print(f'{key} = {value}')
    elif args.action == 'set':
        if not args.pairs:
            raise ClusterError('profile set needs at least one key=value')
        print(config_file.set_profile(args.name, _keywords(args.pairs)))
    elif args.action == 'delete':
        config_file.delete_profile(args.name)


def _cmd_config(args: argparse.Namespace) -> None:
    config_file.check_setting_name(args.section, args.key)
    if args.action == 'get':
        value = config_file.get(args.section, args.key)
        if isinstance(value, dict):
            for key, item in value.items():
                print(f'{key} = {item}')
        else:
            print(value)
    else:
        if args.key is None or args.value is None:
            raise ClusterError('config set needs SECTION KEY VALUE')
        config_file.set(args.section, args.key, args.value)


def _cmd_submit(args: argparse.Namespace) -> None:
    command = list(args.command)
    if command and command[0] == '--':
        command = command[1:]
    elif '--' in command:
        stray = command[:command.index('--')]
        raise UsageError(f'unexpected {" ".join(map(repr, stray))} before --: give each '
                         f'keyword as -k key=value (quote a value with spaces: -k "mem=4 GB")')
    if not command:
        raise ClusterError('submit needs a command after --')
    text = command[0] if len(command) == 1 else ' '.join(shlex.quote(c) for c in command)
    job = Job(text, qtype=args.qtype, profile=args.profile, **_keywords(args.keyword))
    job.submit()
    print(job.id)
    _say_where(job)
    if job.qtype == 'local':  # local jobs live in this process: see them through
        code, out, err = job.get()
        sys.stdout.write(out)
        sys.stderr.write(err)
        info = job.info
        if info.state.value != 'completed':
            sys.stderr.write(f'cluster: job {job.id} ended {info.state}'
                             + (f': {info.reason}' if info.reason else '') + '\n')
            sys.exit(code if code and 0 < code < 256 else 1)
        if code:
            sys.exit(code)


def _say_where(job: Any) -> None:
    """Tell (on stderr, so stdout stays the id) where the job's output will be."""
    sys.stderr.write(f'cluster: job {job.id}: output {job.outfile}, errors {job.errfile}\n')
    local = job.store.local(job.files, job.outfile)
    if local != job.outfile:
        sys.stderr.write(f'cluster: job {job.id}: the output stays there; a Job\'s get() '
                         f'fetches it to {local}\n')


def _cmd_queue(args: argparse.Namespace) -> None:
    queue = Queue(user=args.user, qtype=args.qtype, profile=args.profile)
    infos = queue.queue
    details = queue.system.listing_details(list(infos)) if infos else {}
    rows = [('id', 'state', 'exit', 'reason', 'output', 'name')]
    for job_id, info in infos.items():
        known = details.get(job_id, {})
        code = info.exitcode
        if code is None and info.state.final:
            code = known.get('exitcode')
        rows.append((job_id, str(info.state), '' if code is None else str(code),
                     info.reason or '', known.get('output') or '', info.name or ''))
    print(_table(rows))


def _cmd_wait(args: argparse.Namespace) -> None:
    queue = Queue(qtype=args.qtype, profile=args.profile)
    infos = wait_showing(queue, args.ids, args.timeout)  # a bar on a terminal
    failed = 0
    for job_id, info in infos.items():
        print(f'{job_id} {info.state} exit={info.exitcode}')
        failed += info.state.value != 'completed'
    sys.exit(1 if failed else 0)


def _cmd_clean(args: argparse.Namespace) -> None:
    if not args.yes and not _interactive():
        raise UsageError('cannot ask whether to delete without a terminal: pass --yes')
    deleted = clean_dir(args.directory, suffix=args.suffix, qtype=args.qtype,
                        confirm=not args.yes, delete_outputs=not args.keep_outputs,
                        profile=args.profile)
    for path in sorted(deleted):
        print(path)


def _cmd_demo(args: argparse.Namespace) -> None:
    run_demo(qtype=args.qtype, parts=args.parts, lines=args.lines, workdir=args.dir,
             keep=args.keep)


class UsageError(ClusterError):
    """Bad command-line use: reported like argparse's own errors."""


def _interactive() -> bool:
    """True when a prompt can be answered (stdin is a terminal)."""
    return sys.stdin is not None and sys.stdin.isatty()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog='cluster', description=DESCRIPTION)
    parser.add_argument('-v', '--verbose', action='count', default=0, help='more logging')
    sub = parser.add_subparsers(dest='command_name', metavar='COMMAND', parser_class=_Parser)
    sub.required = True

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(handler=handler)
        return cmd

    remote_help = 'a profile; a remote one (remote = ssh://...) works on that cluster'
    cmd = add('options', _cmd_options, 'show the keyword options and their batch formats')
    cmd.add_argument('--qtype', choices=QTYPES)
    cmd.add_argument('--table', action='store_true', help='as a reStructuredText table')

    cmd = add('profile', _cmd_profile, 'list, show, set or delete profiles in ~/.cluster')
    cmd.add_argument('action', choices=('list', 'show', 'set', 'delete'))
    cmd.add_argument('name', nargs='?')
    cmd.add_argument('pairs', nargs='*', metavar='key=value')

    cmd = add('config', _cmd_config, 'get or set a value in ~/.cluster')
    cmd.add_argument('action', choices=('get', 'set'))
    cmd.add_argument('section')
    cmd.add_argument('key', nargs='?')
    cmd.add_argument('value', nargs='?')

    cmd = add('submit', _cmd_submit, 'submit a shell command: cluster submit [-k mem=4GB] -- CMD')
    cmd.add_argument('--qtype', choices=QTYPES)
    cmd.add_argument('--profile', help=remote_help)
    cmd.add_argument('-k', '--keyword', action='append', default=[], metavar='key=value')
    cmd.add_argument('command', nargs=argparse.REMAINDER)

    cmd = add('queue', _cmd_queue, "list the user's jobs")
    cmd.add_argument('--qtype', choices=QTYPES)
    cmd.add_argument('--profile', help=remote_help)
    cmd.add_argument('--user')

    cmd = add('wait', _cmd_wait, 'wait for job ids to finish; exit 1 if any did not complete')
    cmd.add_argument('ids', nargs='+')
    cmd.add_argument('--qtype', choices=QTYPES)
    cmd.add_argument('--profile', help=remote_help)
    cmd.add_argument('--timeout', type=float)

    cmd = add('clean', _cmd_clean, 'delete the files of jobs this package wrote in DIR')
    cmd.add_argument('directory', nargs='?', default='.')
    cmd.add_argument('--suffix', default='cluster')
    cmd.add_argument('--qtype', choices=QTYPES)
    cmd.add_argument('--profile', help='a remote profile: its remote job files go too')
    cmd.add_argument('--keep-outputs', action='store_true')
    cmd.add_argument('-y', '--yes', action='store_true', help='do not ask')

    add_commands(add, QTYPES)
    _add_demo(add)
    return parser


def _add_demo(add: Any) -> None:
    cmd = add('demo', _cmd_demo, 'run the demo pipeline: split, process in parallel, merge')
    cmd.add_argument('--qtype', choices=QTYPES, default='local')
    cmd.add_argument('--parts', type=int, default=4)
    cmd.add_argument('--lines', type=int, default=100_000)
    cmd.add_argument('--dir', help='work directory (default: a new temporary one)')
    cmd.add_argument('--keep', action='store_true',
                     help='keep the files it wrote (by default they are removed at the end)')


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the ``cluster`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO,
                            format='%(levelname)s %(name)s: %(message)s')
    try:
        args.handler(args)
    except BrokenPipeError:  # e.g. `cluster options | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (ClusterError, ValueError, TimeoutError) as exc:
        sys.stderr.write(f'cluster: error: {" ".join(str(exc).split())}\n')
        sys.exit(2)


if __name__ == '__main__':
    main()

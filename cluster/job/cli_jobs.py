"""The ``cluster`` commands for recorded jobs: ``jobs``, ``get``, ``resubmit``, ``cancel``.

They work from any later process, through the records of :mod:`cluster.job.records`.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from typing import Any, List, Optional, Sequence

from ..run.errors import JobError
from .attach import attach, jobs, resubmit
from .recorded_array import RecordedArray

logger = logging.getLogger(__name__)


def _age(seconds: float) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``."""
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60)):
        if seconds >= size:
            return f'{int(seconds // size)}{unit}'
    return f'{int(max(seconds, 0))}s'


def table(rows: List[Sequence[str]]) -> str:
    """Columns padded to their widest cell (the last one is not padded)."""
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]) - 1)]
    return '\n'.join('  '.join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]])
                     .rstrip() for row in rows)


def cmd_jobs(args: argparse.Namespace) -> None:
    rows = [('id', 'name', 'system', 'state', 'exit', 'age')]
    now = time.time()
    for job in jobs(state=args.state, profile=args.profile):
        info = job._info
        where = job.record['system'] + (f'@{job.record["remote"]["address"]}'
                                        if job.record['remote'] else '')
        code = '' if info is None or info.exitcode is None else str(info.exitcode)
        rows.append((job.id, job.name, where, str(info.state) if info else 'unknown', code,
                     _age(now - job.record['submitted'])))
    print(table(rows))


def _exit_code(code: Optional[int], completed: bool) -> int:
    """The command's exit status for a job's code: the code itself, else 1 unless it
    completed."""
    if code is not None and 0 < code < 256:
        return code
    return 0 if completed and not code else 1


def cmd_get(args: argparse.Namespace) -> None:
    job = attach(args.id, qtype=args.qtype, profile=args.profile)
    if args.call is not None and not isinstance(job, RecordedArray):
        raise JobError(f'--call: job {args.id} is not an Executor array or task')
    if not job.is_function:
        code, out, err = job.get(timeout=args.timeout)
        sys.stdout.write(out)
        sys.stderr.write(err)
        info = job.info
        if info.state.value != 'completed':
            sys.stderr.write(f'cluster: job {job.id} ended {info.state}'
                             + (f': {info.reason}' if info.reason else '') + '\n')
        sys.exit(_exit_code(code, info.state.value == 'completed'))
    try:
        value = job.get(timeout=args.timeout, **({} if args.call is None else {'call': args.call}))
    except JobError as exc:  # it did not run to its end: no value, no exception of its own
        sys.stderr.write(f'cluster: {exc}\n')
        sys.exit(_exit_code(job.info.exitcode, False))
    except Exception as exc:  # noqa: BLE001 - the function's own exception
        text = getattr(exc, 'remote_traceback', None) or ''.join(
            traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(text if text.endswith('\n') else text + '\n')
        sys.exit(1)
    print(repr(value))


def cmd_resubmit(args: argparse.Namespace) -> None:
    for job_id in args.ids:
        job = resubmit(job_id, qtype=args.qtype, profile=args.profile, failed=args.failed)
        print(job.id)
        sys.stderr.write(f'cluster: job {job_id} resubmitted as {job.id} ({job.name}): '
                         f'output {job.outfile}\n')


def cmd_cancel(args: argparse.Namespace) -> None:
    for job_id in args.ids:
        attach(job_id, qtype=args.qtype, profile=args.profile).cancel()
        print(f'{job_id} cancelled')


def add_commands(add: Any, qtypes: Sequence[str]) -> None:
    """Add the commands to the ``cluster`` parser (``add(name, handler, help)``)."""
    where = 'the profile of the job (else the one its record names)'
    cmd = add('jobs', cmd_jobs, 'list recorded jobs, newest first, with their states')
    cmd.add_argument('--state', choices=('pending', 'running', 'completed', 'failed',
                                         'cancelled', 'timeout', 'held', 'unknown'))
    cmd.add_argument('--profile', help='only jobs made with this profile')

    cmd = add('get', cmd_get, "print a job's output (or its function's value) and exit with "
                              "its code; from any process")
    cmd.add_argument('id')
    cmd.add_argument('--qtype', choices=qtypes)
    cmd.add_argument('--profile', help=where)
    cmd.add_argument('--timeout', type=float, help='seconds to wait for the job to end')
    cmd.add_argument('--call', type=int, metavar='N',
                     help="an Executor array's call N alone (numbered as it was given them)")

    cmd = add('resubmit', cmd_resubmit, 'run recorded jobs again from their kept files (new '
                                        'ids and names; the old outputs stay)')
    cmd.add_argument('ids', nargs='+', metavar='ID')
    cmd.add_argument('--failed', action='store_true',
                     help="only an Executor array's tasks that failed, were cancelled, or had "
                          'a call raise')
    cmd.add_argument('--qtype', choices=qtypes)
    cmd.add_argument('--profile', help=where)

    cmd = add('cancel', cmd_cancel, 'cancel recorded jobs by id')
    cmd.add_argument('ids', nargs='+', metavar='ID')
    cmd.add_argument('--qtype', choices=qtypes)
    cmd.add_argument('--profile', help=where)

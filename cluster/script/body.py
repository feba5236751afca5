"""The body of every job script: record the exit code, turn signals into codes, run.

The body writes the command's exit code to the job's ``.code`` file when it ends, through
a temporary file and a rename, so the file is never seen half-written. A signal that ends
the job (:data:`TRAPPED_SIGNALS`) is recorded as 128 + its number, as a shell reports it.

A job with ``requeue`` runs once per attempt (:class:`Attempts`): each attempt removes the
files an earlier one left (its exit code and result), counts itself in the ``.attempts``
file, and refuses to run after more than ``max_requeues`` requeues. A function job that
checkpoints runs in the background, so that the body can hand it the checkpoint signal.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Optional, Sequence

from .files import MARKER

#: signals that end a job (Slurm and Torque send TERM, then KILL, on scancel/qdel and at
#: the time limit); the job script records 128 + signal for them. KILL cannot be caught:
#: then no code is written and the scheduler's state decides.
TRAPPED_SIGNALS = ('HUP', 'INT', 'QUIT', 'TERM', 'USR1', 'USR2', 'ALRM', 'XCPU')
#: the signal that asks a checkpointing function job to checkpoint (see the runner)
CHECKPOINT_SIGNAL = 'USR2'


@dataclass(frozen=True)
class Attempts:
    """What the body of a requeueable job does at the start of each attempt."""

    #: the batch system's lines that export CLUSTER_ATTEMPT and CLUSTER_REQUEUE
    lines: Sequence[str]
    max_requeues: int
    #: the attempts counter file, and the files of an earlier attempt to remove
    count_file: str
    stale: Sequence[str] = ()
    #: where a function job that checkpoints keeps its checkpoint (exported as
    #: CLUSTER_CHECKPOINT, so that only this job's runner acts on the variables above, not
    #: one of a job it submits); the command then runs in the background and gets
    #: CHECKPOINT_SIGNAL forwarded
    checkpoint: Optional[str] = None


def _attempt_lines(attempts: Attempts) -> list:
    quote = shlex.quote
    count = quote(attempts.count_file)
    most = attempts.max_requeues
    checkpoint = [f'export CLUSTER_CHECKPOINT={quote(attempts.checkpoint)}'] \
        if attempts.checkpoint else ['unset CLUSTER_CHECKPOINT']
    return [f'_cluster_attempts={count}', *attempts.lines, *checkpoint,
            f'export CLUSTER_MAX_REQUEUES={most}',
            # an earlier attempt's code and result are not this attempt's
            'rm -f -- ' + ' '.join(quote(path) for path in attempts.stale),
            f'printf "%s\\n" "$((CLUSTER_ATTEMPT + 1))" > {count}.$$ && mv -f {count}.$$ {count}']


def _guard(attempts: Attempts) -> list:
    most = attempts.max_requeues
    return [f'if [ "$CLUSTER_ATTEMPT" -gt {most} ]; then echo "cluster: attempt '
            f'$CLUSTER_ATTEMPT: requeued more than max_requeues={most} times; not run '
            f'again" >&2; exit 1; fi']


def _forwarding(command: str) -> list:
    """Run ``command`` in the background; the checkpoint signal goes on to it, and SIGTERM
    (which the batch system sends to every process of the job) waits for its checkpoint."""
    return [f'{command} &',
            '_cluster_child=$!',
            f"trap 'kill -{CHECKPOINT_SIGNAL} \"$_cluster_child\" 2>/dev/null' "
            f'{CHECKPOINT_SIGNAL}',
            "trap ':' TERM",
            'while :; do wait "$_cluster_child"; _cluster_code=$?; '
            'kill -0 "$_cluster_child" 2>/dev/null || break; done',
            '(exit "$_cluster_code")']


def job_body(command: str, exitcode: str, runpath: str, modules: Sequence[str] = (),
             attempts: Optional[Attempts] = None) -> str:
    """The script lines that run ``command`` in ``runpath`` (after ``module load`` of each
    of ``modules``) and record its exit code in ``exitcode``; ``attempts`` for a job
    that may be requeued."""
    quote = shlex.quote
    code = quote(exitcode)
    lines = [MARKER, *(_attempt_lines(attempts) if attempts else ()),
             # a batch system's script may define _cluster_end CODE before the body, to end
             # the job in its own way (the code file keeps the true code)
             f'_cluster_exit() {{ code=$?; printf "%s\\n" "$code" > {code}.$$ '
             f'&& mv -f {code}.$$ {code}; ! declare -F _cluster_end >/dev/null || '
             '_cluster_end "$code"; exit "$code"; }',
             'trap _cluster_exit EXIT',
             # a signal ends the job with 128 + its number, as a shell reports it;
             # the EXIT trap then records that, never the $? of the command before
             '_cluster_signal() { exit $((128 + $(kill -l "$1"))); }',
             *(f"trap '_cluster_signal {sig}' {sig}" for sig in TRAPPED_SIGNALS),
             *(_guard(attempts) if attempts else ()),
             f'cd {quote(runpath)} || exit 1']
    lines += [f'module load {quote(module)}' for module in modules]
    if attempts is not None and attempts.checkpoint:
        lines += _forwarding(command)
    else:
        lines.append(command)
    return '\n'.join(lines)

"""The body of every job script: record the exit code, turn signals into codes, run.

The body writes the command's exit code to the job's ``.code`` file when it ends, through
a temporary file and a rename, so the file is never seen half-written. A signal that ends
the job (:data:`TRAPPED_SIGNALS`) is recorded as 128 + its number, as a shell reports it.
"""
from __future__ import annotations

import shlex
from typing import Sequence

from .files import MARKER

#: signals that end a job (Slurm and Torque send TERM, then KILL, on scancel/qdel and at
#: the time limit); the job script records 128 + signal for them. KILL cannot be caught:
#: then no code is written and the scheduler's state decides.
TRAPPED_SIGNALS = ('HUP', 'INT', 'QUIT', 'TERM', 'USR1', 'USR2', 'ALRM', 'XCPU')



def job_body(command: str, exitcode: str, runpath: str, modules: Sequence[str] = ()) -> str:
    """The script lines that run ``command`` in ``runpath`` (after ``module load`` of each
    of ``modules``) and record its exit code in ``exitcode``."""
    quote = shlex.quote
    code = quote(exitcode)
    lines = [MARKER,
             f'_cluster_exit() {{ code=$?; printf "%s\\n" "$code" > {code}.$$ '
             f'&& mv -f {code}.$$ {code}; exit "$code"; }}',
             'trap _cluster_exit EXIT',
             # a signal ends the job with 128 + its number, as a shell reports it;
             # the EXIT trap then records that, never the $? of the command before
             '_cluster_signal() { exit $((128 + $(kill -l "$1"))); }',
             *(f"trap '_cluster_signal {sig}' {sig}" for sig in TRAPPED_SIGNALS),
             f'cd {quote(runpath)} || exit 1']
    lines += [f'module load {quote(module)}' for module in modules]
    lines.append(command)
    return '\n'.join(lines)

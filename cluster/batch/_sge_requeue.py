"""Grid Engine's side of ``requeue=True``: the header lines, the body's attempt lines, and
how a job script ends (facts pinned by tests/test_sge_service.py).

A requeueable job is submitted ``-r y`` (rerun after a host failure or an administrator's
``qmod -rj``); any other ``-r n``, which ``qmod -rj`` refuses ("not restartable"). A
function job that checkpoints with a time limit gets its checkpoint signal from a timer
of its own: the header sets ``CLUSTER_CHECKPOINT_AFTER`` (``h_rt - grace`` seconds) and
the attempt lines start ``sleep`` and ``kill -USR2`` of the job's shell, which forwards
it to the runner, at each attempt. Grid Engine's soft limit ``-l s_rt`` warns only once
per job: its first run gets SIGUSR1, but a rescheduled run is killed at ``s_rt`` without
a warning (``failed 37``, exit 137); ``-notify`` warns only seconds before a kill.

The job requeues itself by **exiting 99**, which Grid Engine always reschedules
(sge_conf(5), unless the site sets ``FORBID_RESCHEDULE``): ``qmod -rj`` needs root or
manager rights (qmod(1)), which a job's user has not. The runner's requeue command only
marks the attempt (``<attempts file>.requeue``, removed when an attempt starts; the job's
``$TMPDIR`` is not always exported); the script's ``_cluster_end`` then exits 99. A job
script that ends 99 or 100 for any other reason ends 1 instead (100 would leave the job
in an error state): a command that exits 99 is not rerun unasked, and its code file
keeps the true code.

Attempts: Grid Engine only says whether the run is a restart (``$RESTARTED`` 0 or 1), so
an attempt's number is the count the previous attempt left in the attempts file.
"""
from __future__ import annotations

from typing import List, Optional

#: exit status of a job script that asks Grid Engine to run it again
RESCHEDULE_EXIT = 99
#: the body's exports: the attempt, and how the job requeues itself (see the docstring)
ATTEMPT_LINES = [
    'if [ "${RESTARTED:-0}" = 1 ] && [ -s "$_cluster_attempts" ]; then '
    'export CLUSTER_ATTEMPT="$(cat -- "$_cluster_attempts")"; '
    'else export CLUSTER_ATTEMPT=0; fi',
    'rm -f -- "$_cluster_attempts.requeue"',
    'if [ -n "${CLUSTER_CHECKPOINT_AFTER:-}" ]; then '
    '(sleep "$CLUSTER_CHECKPOINT_AFTER" && kill -USR2 "$$") 2>/dev/null & _cluster_timer=$!; fi',
    'export CLUSTER_REQUEUE="touch -- $(printf %q "$_cluster_attempts.requeue")"']
#: the job script's _cluster_end (see :mod:`cluster.script.body`), before the body
END_LINES = [
    '_cluster_end() {',
    '  [ -z "${_cluster_timer:-}" ] || kill "$_cluster_timer" 2>/dev/null',
    '  if [ -n "${_cluster_attempts:-}" ] && [ -e "$_cluster_attempts.requeue" ]; then',
    f'    exit {RESCHEDULE_EXIT}   # requeue asked: Grid Engine runs the job again',
    '  fi',
    '  case "$1" in 99|100) exit 1 ;; esac   # rescheduled or error state, unasked',
    '}',
]
#: what the keyword help says of ``requeue`` on Grid Engine
NOTE = ('#$ -r y (else -r n); for a function that checkpoints, SIGUSR2 at time - grace '
        '(#$ -v CLUSTER_CHECKPOINT_AFTER=s); it requeues itself by exit 99')


def _seconds(limit: str) -> int:
    hours, minutes, seconds = (int(part) for part in str(limit).split(':'))
    return hours * 3600 + minutes * 60 + seconds


def header(requeue: bool, grace: Optional[int], limit: Optional[str]) -> List[str]:
    """``#$`` lines for the ``requeue`` keyword (see the module docstring)."""
    if not requeue:
        return ['#$ -r n']
    lines = ['#$ -r y']
    if grace and limit:
        lines.append(f'#$ -v CLUSTER_CHECKPOINT_AFTER={max(1, _seconds(limit) - int(grace))}')
    return lines

"""Slurm's side of ``requeue=True``: the header lines, the body's attempt lines, and the
rule that a preempted job which will run again is not over.

A requeueable job is submitted ``--requeue`` (and ``--open-mode=append``: Slurm would
empty its output files at each attempt); any other ``--no-requeue``, so that a preemption
ends it (PREEMPTED) instead of running it again unasked, whatever the cluster's
``JobRequeue``. A function job that checkpoints also gets ``--signal=B:USR2@<grace>``:
``B:`` because only the batch shell is signalled then (without it, only ``srun`` steps
are, and a program the shell started never hears of it); the job body forwards the signal
to the runner. With ``SlurmctldParameters=preempt_send_user_signal`` a preempted job gets
the same signal at once, then SIGTERM after the partition's ``GraceTime``.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

from .base import JobInfo, State

#: the body's exports: the attempt (Slurm counts restarts) and how the job requeues itself
ATTEMPT_LINES = ['export CLUSTER_ATTEMPT="${SLURM_RESTART_COUNT:-0}"',
                 'export CLUSTER_REQUEUE="scontrol requeue $SLURM_JOB_ID"']
#: what the keyword help says of ``requeue`` on Slurm
NOTE = ('#SBATCH --requeue (else --no-requeue); --signal=B:USR2@grace for a function that '
        'checkpoints')
#: the reason parse_squeue and parse_sacct give a job Slurm lists as PREEMPTED
PREEMPTED = 'preempted'


def header(requeue: bool, grace: Optional[int]) -> List[str]:
    """``#SBATCH`` lines for the ``requeue`` keyword (see the module docstring)."""
    if not requeue:
        return ['#SBATCH --no-requeue']
    lines = ['#SBATCH --requeue', '#SBATCH --open-mode=append']  # keep every attempt's output
    return lines + ([f'#SBATCH --signal=B:USR2@{grace}'] if grace else [])


def preempted_reason(native: str, reason: Optional[str]) -> Optional[str]:
    """The reason of a job in state ``native``: 'preempted' for PREEMPTED without one."""
    return reason or (PREEMPTED if native.startswith(('PREEMPTED', 'PR')) else None)


def follow(jobs: Dict[str, JobInfo], listed: Callable[[List[str]], Dict[str, JobInfo]]
           ) -> Dict[str, JobInfo]:
    """Accounting rows of preempted jobs that are back in the queue are not their end.

    sacct shows a requeued job's preempted run for a few seconds while squeue already
    lists it pending again; ``listed(ids)`` (one squeue call, made only when sacct shows a
    preempted job) decides: a job it lists as not over is taken as it lists it.
    """
    preempted = [job_id for job_id, info in jobs.items()
                 if info.state is State.CANCELLED and info.reason == PREEMPTED]
    if preempted:
        for job_id, info in listed(preempted).items():
            if job_id in jobs and not info.state.final and info.state is not State.UNKNOWN:
                jobs[job_id] = info
    return jobs

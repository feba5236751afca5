"""How a job ended: the one rule that joins what the batch system says of a job with the
exit code its script wrote."""
from __future__ import annotations

import dataclasses
from typing import Optional

from ..batch import JobInfo, State
from ..run.storage import LocalStore, Store
from ..script.files import JobFiles


def read_exitcode(files: Optional[JobFiles], store: Optional[Store] = None) -> Optional[int]:
    """The exit code a job script wrote, or None when there is none (yet)."""
    if files is None:
        return None
    store = store or LocalStore()
    text = store.read_text(files, store.target(files).exitcode)
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


#: exit codes above this mean a signal ended the script (128 + signal)
SIGNAL_CODES = 128


def outcome(job_id: str, seen: Optional[JobInfo], code: Optional[int]) -> Optional[JobInfo]:
    """How a job ended: the one rule, from the scheduler's view and the script's own code.

    ``seen`` is what the batch system says (its queue or accounting; may be None), ``code``
    what the job script wrote to its exit-code file (None when there is none).

    * A final state other than COMPLETED from the scheduler (cancelled, timeout, failed,
      preempted, node failure, out of memory...) stands; the file only adds the code.
      Such a job never has code 0: without a failing code of its own it gets None.
    * Otherwise the script's code decides: 0 is COMPLETED, anything else FAILED.
    * Otherwise a COMPLETED with the scheduler's exit code (non-zero is FAILED).

    Returns None while neither tells.
    """
    if seen is not None and seen.state.final and seen.state is not State.COMPLETED:
        return dataclasses.replace(seen, id=job_id, exitcode=code or seen.exitcode or None)
    if code is not None:
        base = seen or JobInfo(job_id, State.COMPLETED)
        return dataclasses.replace(base, id=job_id, exitcode=code,
                                   state=State.COMPLETED if code == 0 else State.FAILED)
    if seen is not None and seen.state is State.COMPLETED and seen.exitcode is not None:
        return dataclasses.replace(seen, id=job_id, state=State.COMPLETED
                                   if seen.exitcode == 0 else State.FAILED)
    return None


def ended(info: JobInfo) -> bool:
    """The batch system shows the job as over (final, or ended with an unknown outcome)."""
    return info.state.final or info.state is State.UNKNOWN

"""Exactly-once submission: every submit carries a unique job name, and a submit whose
outcome is unknown is settled by looking that name up before anything is reported.

A submit command can fail after the scheduler took the job: sbatch's "Socket timed out"
while slurmctld is stalled, a local timeout (exit 124), or a connection lost over SSH
(exit 255). Such a failure is never simply re-run. :func:`submit_once` looks the job up
by its name (``find``) until the scheduler answers or a deadline passes:

* found: the submission worked; its id is returned;
* absent in two answers a few seconds apart: it was not taken, and is submitted again;
* no answer by the deadline, or no way to tell: :class:`SubmissionUnknown`, naming the job.

Only a failure the scheduler reported for the job itself is a :class:`SubmissionError`.
"""
from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Callable, List, Optional, Sequence, Tuple

from ..run.errors import SubmissionError, SubmissionUnknown

logger = logging.getLogger(__name__)

Result = Tuple[int, str, str]
#: ``find(name)``: ids of jobs so named; [] when the scheduler says there are none;
#: None when it cannot answer now. Raises :class:`Undecidable` when it never can.
Finder = Callable[[str], Optional[List[str]]]

#: exit codes of the shells for "the command may have run": timeout, lost connection
UNKNOWN_EXIT_CODES = frozenset({124, 255})
#: what a scheduler client prints when it could not hear the server's answer
TRANSIENT_MESSAGES = (
    'socket timed out', 'unable to contact', 'connection refused', 'connect failure',
    'communication connection failure', 'communication failure', 'zero bytes were transmitted',
    'connection reset', 'broken pipe', 'temporarily unavailable', 'timed out',
    'cannot connect', 'transport endpoint')
#: seconds between two empty answers before a job counts as not taken
CONFIRM_ABSENT = 2.0


_SUFFIX = re.compile(r'\.c[0-9a-f]{10}$')


class Undecidable(Exception):
    """The scheduler can never say whether the job exists (e.g. no accounting)."""


def unique_name(name: str) -> str:
    """``name`` with a random suffix that marks one submission: ``align.c3f9e01a2b7``."""
    return f'{name}.c{secrets.token_hex(5)}'


def given_name(name: Optional[str]) -> Optional[str]:
    """The name a job was given: a scheduler's job name less the :func:`unique_name` suffix."""
    return _SUFFIX.sub('', name) if name else name


def outcome_unknown(result: Result) -> bool:
    """True when a failed submit may have been taken after all."""
    code, out, err = result
    if code in UNKNOWN_EXIT_CODES:
        return True
    text = (out + err).lower()
    return any(phrase in text for phrase in TRANSIENT_MESSAGES)


def _detail(text: str) -> str:
    """The line of a command's output that says what went wrong (quotes stripped)."""
    lines = [line.strip(" '\t") for line in text.splitlines() if line.strip(" '\t")]
    telling = [line for line in lines
               if any(phrase in line.lower() for phrase in TRANSIENT_MESSAGES)]
    return (telling or lines or [''])[-1][:300]


def _id_order(job_id: str) -> tuple:
    head = job_id.split('.', 1)[0]
    return (0, int(head), job_id) if head.isdigit() else (1, 0, job_id)


def find_submitted(find: Finder, name: str, *, deadline: float, backoff: float = 0.5,
                   hint: str = '', confirm: Optional[float] = None) -> Optional[str]:
    """The id of the job named ``name``; None when it is certainly not there.

    Asks ``find`` with backoff (at most 5 s apart) while the scheduler cannot answer;
    raises :class:`SubmissionUnknown` when ``deadline`` seconds pass without an answer.
    """
    confirm = CONFIRM_ABSENT if confirm is None else confirm
    end = time.monotonic() + deadline
    pause, empty_since = backoff, None
    while True:
        try:
            ids = find(name)
        except Undecidable as exc:
            raise SubmissionUnknown(name, str(exc), hint) from None
        now = time.monotonic()
        if ids:
            ids = sorted(set(ids), key=_id_order)
            if len(ids) > 1:
                logger.warning('%d jobs are named %s (%s); taking %s', len(ids), name,
                               ', '.join(ids), ids[0])
            return ids[0]
        if ids is not None:
            if empty_since is not None and now - empty_since >= confirm:
                return None
            empty_since = empty_since if empty_since is not None else now
        if now >= end:
            raise SubmissionUnknown(name, f'the scheduler gave no answer in {deadline:.0f} s',
                                    hint)
        wait = confirm if ids is not None else pause
        time.sleep(max(0.0, min(wait, end - now)))
        if ids is None:
            pause = min(pause * 2, 5.0)


def submit_once(shell: Callable[..., Result], argv: Sequence[str], name: str,
                parse_id: Callable[[str], str], find: Finder, *, timeout: float,
                deadline: float, backoff: float = 0.5, tries: int = 3,
                hint: str = '') -> str:
    """Run the submit command ``argv`` for the job named ``name``; return the job id.

    A failure with an unknown outcome is looked up (:func:`find_submitted`); the command
    is run again only after the lookup found the job absent, at most ``tries`` times.
    The lookups end ``deadline`` seconds after the first submit at the latest.
    """
    started = time.monotonic()
    code, out, err = 127, '', ''
    for attempt in range(1, max(1, tries) + 1):
        code, out, err = shell(list(argv), stdin=None, timeout=timeout)
        job_id = parse_id(out) if code == 0 else ''
        if job_id:
            if attempt > 1:
                logger.info('%s: job %s submitted as %s at try %d, %.1f s after the first',
                            argv[0], name, job_id, attempt, time.monotonic() - started)
            return job_id
        if code != 0 and not outcome_unknown((code, out, err)):
            raise SubmissionError(list(argv), code, out, err)
        detail = _detail(out + '\n' + err) or f'exit {code}'
        logger.warning('%s of job %s: outcome unknown (exit %s: %s); looking it up by name',
                       argv[0], name, code, detail)
        left = max(0.0, started + deadline - time.monotonic())  # one deadline for the call
        found = find_submitted(find, name, deadline=left, backoff=backoff, hint=hint)
        if found is not None:
            logger.info('%s: job %s was taken after all, as %s (%.1f s after the submit)',
                        argv[0], name, found, time.monotonic() - started)
            return found
        if attempt < tries:
            logger.info('%s: job %s was not taken; submitting it again (try %d of %d)',
                        argv[0], name, attempt + 1, tries)
    raise SubmissionError(list(argv), code, out, err,
                          message=f'not taken in {tries} tries: '
                                  + (err.strip() or out.strip() or f'exit {code}'))

"""What the requeue tests of every batch system share: reading a job's output as it grows,
and the ``started`` fixture that cancels what a test left running (bounded polling is
:func:`support.until`)."""
from __future__ import annotations

import pytest

from cluster.job import Job


def text_of(path: str) -> str:
    """The file's text so far ('' while it does not exist)."""
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return ''


@pytest.fixture
def started():
    """Submit jobs through it; whatever is still queued or running is cancelled at the end."""
    jobs = []

    def submit(job: Job) -> Job:
        jobs.append(job.submit())
        return job
    yield submit
    for job in jobs:
        try:
            if not job.done:
                job.cancel()
        except Exception as exc:  # the test's own failure is the one to see
            print(f'could not cancel {job}: {exc}')

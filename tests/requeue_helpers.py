"""What the requeue tests of every batch system share: bounded polling, reading a job's
output as it grows, and the ``started`` fixture that cancels what a test left running."""
from __future__ import annotations

import time

import pytest

from cluster.job import Job


def until(condition, timeout: float, what: str):
    """Poll ``condition`` until it gives a true value (bounded); return the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'not within {timeout} s: {what}')
        time.sleep(0.2)


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

"""Helpers for the Slurm and Torque back-end tests: fake runners, job writing, waiting."""
from __future__ import annotations

import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from cluster import run
from cluster.batch import BatchSystem, JobInfo
from cluster.job import Job
from cluster.script import JobFiles

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'golden', 'batch')


def data(name: str) -> str:
    """The text of a recorded sample in tests/data."""
    with open(os.path.join(DATA, name)) as handle:
        return handle.read()


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/batch/<name>; UPDATE_GOLDEN=1 rewrites the file."""
    path = os.path.join(GOLDEN, name)
    if os.environ.get('UPDATE_GOLDEN'):
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, 'w') as handle:
            handle.write(text)
    with open(path) as handle:
        expected = handle.read()
    assert text == expected, f'{name} differs from the golden file; got:\n{text}'


class FakeShell:
    """A runner that answers from a script of results and records every argv.

    ``answers`` maps a program name to a list of (code, stdout, stderr) used in turn
    (the last one repeats), or to a function of argv returning such a tuple.
    """

    def __init__(self, answers: Dict[str, object]) -> None:
        self.answers = answers
        self.calls: List[List[str]] = []

    def __call__(self, argv: Sequence[str], stdin: Optional[str] = None,
                 timeout: Optional[float] = None) -> Tuple[int, str, str]:
        argv = list(argv)
        self.calls.append(argv)
        answer = self.answers.get(argv[0], (127, '', f'{argv[0]}: not faked'))
        if callable(answer):
            return answer(argv)
        if isinstance(answer, list):
            used = sum(1 for call in self.calls if call[0] == argv[0])
            return answer[min(used, len(answer)) - 1]
        return answer  # type: ignore[return-value]

    def programs(self) -> List[str]:
        return [call[0] for call in self.calls]


def write_job(system: BatchSystem, directory: str, name: str, command: str,
              **options) -> JobFiles:
    """Write a job for ``system`` with the production code (:meth:`cluster.Job.write`),
    running in ``directory``; return its files."""
    job = Job(command, name=name, qtype=system.name, path=directory, dir=directory,
              **options)
    job.system = system  # this test's instance (its runner), same scripts
    return job.write().files


def submit_options(files: JobFiles) -> dict:
    return {'outfile': files.outfile, 'errfile': files.errfile}


def wait_for(system: BatchSystem, job_id: str, done: Callable[[JobInfo], bool],
             timeout: float = 60, accounting: bool = True) -> JobInfo:
    """Poll until ``done(info)`` holds (a job that left the queue is asked of accounting)."""
    deadline = time.monotonic() + timeout
    info = None
    while time.monotonic() < deadline:
        info = system.statuses([job_id]).get(job_id)
        if info is None and accounting:
            info = system.final_info([job_id]).get(job_id)
        if info is not None and done(info):
            return info
        time.sleep(0.2)
    raise AssertionError(f'job {job_id} not there after {timeout} s; last seen {info}')


def wait_final(system: BatchSystem, job_id: str, timeout: float = 60) -> JobInfo:
    return wait_for(system, job_id, lambda info: info.state.final, timeout)


def wait_accounting(system: BatchSystem, job_id: str, timeout: float = 30) -> JobInfo:
    """The final accounting record of a job (slurmdbd gets it a moment after the end)."""
    deadline = time.monotonic() + timeout
    info = None
    while time.monotonic() < deadline:
        info = system.final_info([job_id]).get(job_id)
        if info is not None and info.state.final:
            return info
        time.sleep(0.2)
    raise AssertionError(f'no final accounting for job {job_id} in {timeout} s; got {info}')


def wait_file(path: str, timeout: float = 30) -> str:
    """The content of ``path`` once it exists (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as handle:
                return handle.read()
        time.sleep(0.1)
    raise AssertionError(f'{path} did not appear in {timeout} s')


def short_hostname() -> str:
    return run.cmd(['hostname', '-s'])[1].strip()

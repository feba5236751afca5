"""The Job API: :class:`Job` and the helpers ``submit``, ``make_job``, ``make_job_file``,
``submit_file``, ``clean`` and ``clean_dir``.

Nothing here names a batch system: the header and scripts come from the job's
:class:`~cluster.batch.BatchSystem` (``cluster.batch.<system>``), its files from its
:class:`~cluster.run.storage.Store`, and its states from the shared
:class:`cluster.queue.Watcher`.
"""
from __future__ import annotations

import logging
import os
import shlex
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import queue
from ..batch import JobInfo, State
from ..run.errors import ClusterError, JobError, SubmissionUnknown
from ..script import function
from ..script.files import DEFAULT_SUFFIX, JobFiles, Script
from ..run.place import place
from ..run.storage import remove_local
from ..script.body import job_body
from . import records
from . import requeue
from .prepare import (Command, check_dependencies, default_name, dependency_ids, explained,
                      merged_options, submitter, where)

logger = logging.getLogger(__name__)

class Job:
    """A shell command or a Python function to run as a batch job.

    >>> Job('echo hi').submit().get()
    (0, 'hi\\n', '')
    """

    def __init__(self, command: Command, args: Optional[Sequence] = None,
                 name: Optional[str] = None, path: Optional[str] = None,
                 qtype: Optional[str] = None, profile: Optional[str] = None,
                 remote: Any = None, **kwds: Any) -> None:
        if not callable(command) and not isinstance(command, str):
            raise JobError(f'a job is a shell command string or a function, not {command!r}')
        if isinstance(command, str) and not command.strip():
            raise JobError('the command of a job is empty')
        self.command = command
        self.args = args
        self.kwargs: Dict[str, Any] = dict(kwds.pop('kwargs', None) or {})
        self.profile = profile
        self.options = merged_options(profile, kwds)
        self.store, self.system = place(qtype, profile, remote)
        self.qtype = self.system.name
        self.name = self.options.pop('name', None) or name or default_name(command)
        self._suffix = self.options.pop('suffix', DEFAULT_SUFFIX)
        self._filedir = self.options.pop('filedir', None) or path or os.getcwd()
        self._runpath = self.options.pop('dir', None)
        self._cwd = os.getcwd()
        self.depends = list(self.options.pop('depends', None) or [])
        self.imports = self.options.pop('imports', None) or []
        self.modules = self.options.pop('modules', None) or []
        requeue.check(self.options, self.system, self.name)
        #: the job's files on this machine and as the batch system sees them, once claimed
        self._claimed: Optional[Tuple[JobFiles, JobFiles]] = None
        self.is_function = callable(command)
        self.scripts: List[Script] = []
        self._id: Optional[str] = None
        self._submitting: Optional[Future] = None
        self._info: Optional[JobInfo] = None
        self._written = False

    # files and paths: claimed when the job is written (or first asked for) ---------------
    def _claim(self) -> Tuple[JobFiles, JobFiles]:
        if self._claimed is None:
            self._claimed = self.store.claim(self._filedir, self.name, self._suffix,
                                             self.qtype)
            self.name = self._claimed[0].name
        return self._claimed

    @property
    def files(self) -> JobFiles:
        """The job's files on this machine (claiming the name when not written yet)."""
        return self._claim()[0]

    @property
    def target(self) -> JobFiles:
        """The job's files as the batch system sees them."""
        return self._claim()[1]

    @property
    def runpath(self) -> str:
        """Where the job runs (``dir``; else the store's default, else the directory the
        Job was made in)."""
        return self._runpath or self.store.default_runpath or self._cwd

    @property
    def outfile(self) -> str:
        return self.options.get('outfile') or self.target.outfile

    @property
    def errfile(self) -> str:
        return self.options.get('errfile') or self.target.errfile

    @property
    def submission(self) -> Script:
        """The submission script (its text once written)."""
        for script in self.scripts:
            if script.path == self.files.submission:
                return script
        return Script(self.files.submission)

    @property
    def function(self) -> Optional[Script]:
        """The function job's runner file (``<name>_func.<suffix>.py``), None for a command."""
        return Script(self.files.function_py) if self.is_function else None

    # writing and submitting -------------------------------------------------------------
    def _body(self) -> str:
        if self.is_function:
            command = function.run_command(self.target, self.store.python)
        else:
            command = self.command + ''.join(' ' + shlex.quote(str(a)) for a in self.args or ())
        return job_body(command, self.target.exitcode, self.runpath, self.modules,
                        requeue.attempts(self))

    def write(self, overwrite: bool = True) -> 'Job':
        """Write the submission script(s), and for a function job the payload and runner.

        The job's names are claimed here. A write that fails (a full disk, a refused
        remote Python) removes what it wrote, and raises an error naming the path.
        """
        if self.is_function:
            self.store.prepare_function()  # before anything is claimed or written
        fresh = self._claimed is None
        files, target = self._claim()
        try:
            self._write_files(files, target, overwrite)
        except BaseException:
            if fresh:  # a claim made before this write (its files were asked for) stays
                self._undo_write(files, target)
            raise
        self._written = True
        return self

    def _write_files(self, files: JobFiles, target: JobFiles, overwrite: bool) -> None:
        options = dict(self.options, name=self.name, outfile=self.outfile, errfile=self.errfile)
        if self.is_function:
            function.write_payload(files, self.command, self.args or (), self.kwargs,
                                   self.imports, by_value=self.store.ships_functions_by_value)
        header = self.system.render_header(options, target) + requeue.header(self)
        texts = self.system.render_scripts(target, header, self._body())
        self.scripts = [Script(self.store.local(files, path), text)
                        for path, text in texts.items()]
        for script in self.scripts:
            script.write(overwrite)
        pushed = list(texts) + ([target.function_py, target.pickle_in]
                                if self.is_function else [])
        self.store.push(files, pushed)

    def _undo_write(self, files: JobFiles, target: JobFiles) -> None:
        """Remove what a failed first :meth:`write` left, here and on the target side
        (the job's remote directory too), and give up its claim."""
        try:
            self.store.remove(files, target.scripts())
        except Exception as exc:  # the first error is the one to report
            logger.warning('could not remove the files of the failed job %s: %s',
                           self.name, exc)
        remove_local({self.store.local(files, p) for p in target.scripts()}
                     | set(files.scripts()))
        self.scripts = []
        self._claimed = None

    def submit(self, max_queue_len: Optional[int] = None) -> 'Job':
        """Write the job if needed, wait for room in the queue, submit it; return self.

        The submit command itself runs in the batch system's submission thread, in
        order, while the caller goes on writing the next job; :attr:`id` waits for it
        and raises its :class:`SubmissionError` if the batch system refused the job.
        """
        if self.submitted:
            raise JobError(f'job {self.name} was already submitted')
        check_dependencies(self.depends, self.system)
        if not self._written:
            self.write()
        queue.Queue(system=self.system).wait_to_submit(max_queue_len)
        options = dict(self.options, outfile=self.outfile, errfile=self.errfile)
        executor, slots = submitter(self.system)
        slots.acquire()  # bounded, so max_queue_len stays true within PIPELINE_DEPTH
        watcher = self._watcher
        watcher.submission_started()

        def landed(_: Optional[Future] = None) -> None:
            watcher.submission_ended()
            slots.release()
        try:
            future = executor.submit(self._submit_now, options)
        except BaseException:  # e.g. at interpreter shutdown: nothing may stay counted
            landed()
            raise
        future.add_done_callback(landed)
        self._submitting = future
        return self

    def _submit_now(self, options: Dict[str, Any]) -> str:
        """Run the submit command (in the submission thread); track and return the id."""
        with queue.submitting():
            dependencies = dependency_ids(self.depends, self.system)  # submitted before
            job_id = self.system.submit(self.target, dependencies, options)
        self._watcher.track(job_id, self.files, self.store)
        records.submitted(self, job_id)
        logger.info('submitted %s as %s job %s', self.name, where(self.system), job_id)
        return job_id

    @property
    def submitted(self) -> bool:
        """True once :meth:`submit` was called (the id may still be on its way)."""
        return self._submitting is not None

    @property
    def id(self) -> Optional[str]:
        """The batch system's job id; None before :meth:`submit`. Waits for a submission
        under way, and raises its error if the batch system refused the job."""
        return self._wait_id(None)

    def _wait_id(self, timeout: Optional[float]) -> Optional[str]:
        """:attr:`id`, waiting at most ``timeout`` s for a submission under way."""
        if self._id is None and self._submitting is not None:
            try:
                self._id = self._submitting.result(timeout)
            except FutureTimeout:
                raise TimeoutError(f'job {self.name} is still being submitted after '
                                   f'{timeout} s') from None
        return self._id

    # state -------------------------------------------------------------------------------
    @property
    def _watcher(self) -> queue.Watcher:
        return queue.watcher(self.system)

    def _require_id(self, timeout: Optional[float] = None) -> str:
        job_id = self._wait_id(timeout)
        if job_id is None:
            raise JobError(f'job {self.name} has not been submitted')
        return job_id

    def update(self) -> JobInfo:
        """Refresh and return the job's :class:`JobInfo` (cached per poll interval)."""
        self._info = self._watcher.info(self._require_id())
        return self._info

    update_queue_info = update

    @property
    def info(self) -> JobInfo:
        """The job's :class:`JobInfo`: its outcome once known, else refreshed when stale."""
        if self._info is not None and self._info.state.final:
            return self._info
        return self.update()

    @property
    def state(self) -> State:
        return self.update().state if self.submitted else State.UNKNOWN

    @property
    def done(self) -> bool:
        return self.submitted and self.state.final

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the job ends; True when it completed successfully.

        ``timeout`` (seconds) bounds the whole call, a submission still under way
        included; TimeoutError after it. A job known to have ended is not polled again.
        """
        if self._info is None or not self._info.state.final:
            deadline = None if timeout is None else time.monotonic() + timeout
            job_id = self._require_id(timeout)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            info = self._watcher.wait([job_id], left)[job_id]
            self._info = self._explained(info)
            requeue.settled(self)
        return self._info.state == State.COMPLETED and not self._info.exitcode

    def _explained(self, info: JobInfo) -> JobInfo:
        """``info`` with a reason naming the failed dependency of a job that never ran."""
        return explained(info, [d for d in self.depends if isinstance(d, Job)])

    def cancel(self) -> None:
        """Ask the batch system to cancel the job."""
        self.system.cancel([self._require_id()])

    # results -----------------------------------------------------------------------------
    def get_exitcode(self, timeout: Optional[float] = None) -> Optional[int]:
        """The exit code, once the job has ended. Never 0 for a job that did not complete;
        None when it has none (it never ran, or SIGKILL ended it)."""
        self.wait(timeout)
        return self.info.exitcode

    def _read(self, target_path: str, timeout: Optional[float]) -> str:
        self.wait(timeout)
        return self.store.read_text(self.files, target_path) or ''

    def get_stdout(self, timeout: Optional[float] = None) -> str:
        """The job's standard output, once it has ended."""
        return self._read(self.outfile, timeout)

    def get_stderr(self, timeout: Optional[float] = None) -> str:
        """The job's standard error, once it has ended."""
        return self._read(self.errfile, timeout)

    def get(self, timeout: Optional[float] = None) -> Any:
        """(exit_code, stdout, stderr) of a command; the value of a function, or its error.

        ``timeout`` bounds the wait for the job's end (TimeoutError after it). A job that
        did not complete has a non-zero code, or None when it never ran; a function job
        that did not complete raises JobError naming its state and reason.
        """
        self.wait(timeout)
        if not self.is_function:
            if self.info.state is not State.COMPLETED and self.info.exitcode is None:
                logger.warning('job %s (%s) ended %s: %s', self.name, self.id,
                               self.info.state, self.info.reason)
            return self.get_exitcode(), self.get_stdout(), self.get_stderr()
        self.store.pull(self.files, [self.target.pickle_out])
        if os.path.exists(self.files.pickle_out):
            try:
                self.store.check_private(self.files, self.target.pickle_out)
            except ClusterError as exc:
                remove_local([self.files.pickle_out])  # an untrusted copy
                raise JobError(f'function job {self.name}: {exc}') from None
            return function.read_result(self.files)
        info = self.info
        raise JobError(f'function job {self.name} ({self.id}) ended {info.state}'
                       + (f': {info.reason}' if info.reason else '')
                       + (f'\nstderr:\n{self.get_stderr()[-2000:]}' if self.get_stderr() else ''))

    # files ------------------------------------------------------------------------------
    def clean(self, delete_outputs: bool = False) -> None:
        """Delete the scripts and payload; the outputs too with ``delete_outputs``.

        A job that is still pending or running needs its files: cleaning it is a
        :class:`JobError` (wait for it, or cancel it, first).
        """
        if self._claimed is None:
            return  # nothing was ever written
        if self._submitting is not None:
            self._submitting.exception()  # waits: sbatch/qsub must read the script first
            if self._submitting.exception() is None and not self.state.final:
                raise JobError(f'job {self.name} ({self.id}) is {self._info.state} and '
                               f'needs its files: wait() for it, or cancel() it and let it '
                               f'end, before clean()')
        targets = self.target.scripts() + ([self.target.function_py]
                                           if self.is_function else [])
        if delete_outputs:
            targets += self.target.outputs() + [self.outfile, self.errfile]
        targets = sorted(set(targets))
        self.store.remove(self.files, targets)
        records.cleaned(self)
        remove_local({self.store.local(self.files, t) for t in targets}
                     | {s.path for s in self.scripts})

    def _id_text(self) -> str:
        """The id for display, without waiting for a submission under way."""
        if self._submitting is None:
            return 'None'
        if not self._submitting.done():
            return 'submitting'
        problem = self._submitting.exception()
        if problem is None:
            return str(self.id)
        return 'unknown' if isinstance(problem, SubmissionUnknown) else 'refused'

    def __repr__(self) -> str:
        state = self._info.state if self._info else ('written' if self._written else 'new')
        return f'<Job {self.name} {self.qtype} id={self._id_text()} {state}>'

    def __str__(self) -> str:
        what = getattr(self.command, '__qualname__', None) or self.command
        rows = [('name', self.name), ('command', what), ('qtype', where(self.system)),
                ('id', self._id_text()), ('state', self._info.state if self._info else None),
                ('exit code', self._info.exitcode if self._info else None),
                ('options', self.options), ('depends', _safe_ids(self.depends)),
                ('submission', self.submission.path if self._claimed else 'not written'),
                ('stdout', self.outfile if self._claimed else None),
                ('stderr', self.errfile if self._claimed else None)]
        return 'Job\n' + '\n'.join(f'  {key:<11}{value}' for key, value in rows)


def _safe_ids(depends: Sequence[Any]) -> List[str]:
    return [d._id_text() if isinstance(d, Job) else str(getattr(d, 'id', d)) for d in depends]

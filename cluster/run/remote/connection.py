"""One pooled connection per endpoint: a Xenon ``ssh`` scheduler and an ``sftp`` filesystem.

:func:`connect` returns the shared :class:`Connection` of an endpoint; it opens nothing
until first used. Opening starts (or reuses) the xenon-grpc server, so the JVM only
runs once a remote profile is used. Both handles are reused by every job of the
endpoint and closed at exit (xenon-grpc 3.0.1 leaks one SSH connection per closed ssh
scheduler, so they are never closed early).

When the xenon-grpc server dies, the next call finds it dead, starts a new server,
opens new handles, and goes on: a job's state lives on the remote side and in its files,
not in the server. When the SSH session dies (sshd's session processes killed, the
network dropped) while the server lives, the call logs in again, with backoff while the
host does not answer (see :mod:`.faults`). A remote command is only tried again when it
cannot have started: a command that may have run is reported (exit code 255), never
repeated, so a submission is never made twice.
"""
from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from ... import batch
from ..errors import ClusterError
from . import diagnose, shell
from .faults import RECOVER_BACKOFF, RECOVER_TIMEOUT, failure_kind
from .endpoint import Endpoint, HostUnreachableError, RemoteError, RemotePythonError

logger = logging.getLogger(__name__)

#: seconds every other Xenon call may take
CALL_TIMEOUT = 120.0
#: milliseconds between Xenon's checks of a running ssh job (100..60000)
POLLING_DELAY_MS = 100

ServerFactory = Callable[[Any], Any]


def default_server_factory(dead: Any = None) -> Any:
    """The default xenon-grpc server, (re)started when missing or dead."""
    import xenon_backend  # heavy: xenon_backend (grpc)
    return xenon_backend.init() if dead is not None else xenon_backend.default_server()


class Connection:
    """The scheduler, filesystem and remote shell of one endpoint."""

    def __init__(self, endpoint: Endpoint, server_factory: Optional[ServerFactory] = None) -> None:
        self.endpoint = endpoint
        self.server_factory = server_factory or default_server_factory
        self.server: Any = None
        self._scheduler: Any = None
        self._filesystem: Any = None
        self._credential: Any = None
        self._lock = threading.RLock()
        self._home: Optional[str] = None
        self._systems: Dict[str, Any] = {}
        self._detected: Optional[str] = None
        self._python_ok: set = set()
        #: remote commands run, by program name (benchmarks count the status commands)
        self.commands: collections.Counter = collections.Counter()
        #: new servers started, and new logins after a lost SSH session
        self.reconnects = 0
        self.sessions_reopened = 0
        self._generation = 0

    # -- opening ----------------------------------------------------------------------------
    def _properties(self, kind: str) -> Dict[str, str]:
        strict = 'true' if self.endpoint.strict_host_key else 'false'
        timeout_ms = str(int(self.endpoint.timeout * 1000))
        if kind == 'scheduler':
            prefix = 'xenon.adaptors.schedulers.ssh.'
            extra = {prefix + 'timeout': timeout_ms,
                     prefix + 'queue.pollingDelay': str(POLLING_DELAY_MS)}
        else:
            prefix = 'xenon.adaptors.filesystems.sftp.'
            extra = {prefix + 'connection.timeout': timeout_ms}
        # without strict checking the known_hosts file is neither read nor rewritten
        return {prefix + 'strictHostKeyChecking': strict, prefix + 'loadKnownHosts': strict,
                **extra}

    def _open(self, dead_server: Any = None) -> None:
        import xenon_backend as xb  # heavy: xenon_backend (grpc)
        from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
        endpoint = self.endpoint
        started = time.monotonic()
        # a clear error naming the host, within the timeout, before Xenon is asked
        diagnose.ssh_greeting(endpoint.host, endpoint.port, endpoint.timeout)
        if self.server is None or dead_server is not None:
            self.server = self.server_factory(dead_server)
        credential = self._credential or endpoint.credential()
        attempt = time.monotonic()       # when the call that failed began
        try:
            if self._scheduler is None:
                try:
                    self._scheduler = xb.Scheduler.create(
                        'ssh', endpoint.location, self._properties('scheduler'), credential,
                        server=self.server, timeout=CALL_TIMEOUT)
                except xe.InvalidCredentialException:
                    password = None
                    if isinstance(credential, xb.DefaultCredential):
                        password = endpoint.password(prompt=True)
                    if password is None:
                        raise
                    credential = xb.PasswordCredential(username=endpoint.user, password=password)
                    attempt = time.monotonic()
                    self._scheduler = xb.Scheduler.create(
                        'ssh', endpoint.location, self._properties('scheduler'), credential,
                        server=self.server, timeout=CALL_TIMEOUT)
                self._credential = credential
            attempt = time.monotonic()
            self._filesystem = xb.FileSystem.create(
                'sftp', endpoint.location, self._properties('filesystem'), credential,
                server=self.server, timeout=CALL_TIMEOUT)
        except xe.XenonException as exc:
            if isinstance(exc, xe.XenonServerError):
                raise RemoteError(f'the xenon-grpc server cannot be used for '
                                  f'{endpoint.address}: {exc.message}') from None
            raise diagnose.explain(endpoint, exc, time.monotonic() - attempt) from None
        logger.info('connected to %s in %.2f s', endpoint.address, time.monotonic() - started)
        _register_exit()

    def handles(self) -> Tuple[Any, Any]:
        """(scheduler, filesystem), opened on first use (and anew when the server died)."""
        return self._current()[:2]

    def _current(self) -> Tuple[Any, Any, int]:
        """(scheduler, filesystem, generation); a server known to be dead is replaced first,
        so that a call is never sent to it."""
        with self._lock:
            alive = getattr(self.server, 'process_alive', None)
            if self.server is not None and callable(alive) and not alive():
                self._recover('server', self._generation, time.monotonic() + RECOVER_TIMEOUT)
            elif self._scheduler is None or self._filesystem is None:
                self._open()
            return self._scheduler, self._filesystem, self._generation

    def reconnect(self, failed_server: Any = None) -> None:
        """Start a new server (the old one is gone) and open new handles."""
        with self._lock:
            if failed_server is not None and self.server is not failed_server \
                    and self._scheduler is not None:
                return  # another thread has reconnected already
            self._recover('server', self._generation, time.monotonic() + RECOVER_TIMEOUT)

    def _recover(self, kind: str, generation: int, deadline: float) -> None:
        """Open new handles (on a new server when ``kind`` is 'server'), unless another
        thread did since ``generation``; while the host does not answer, try again with
        backoff (at most :data:`RECOVER_BACKOFF` s apart) until ``deadline``."""
        with self._lock:
            if generation != self._generation and self._scheduler is not None:
                return
            dead = self.server if kind == 'server' else None
            self._scheduler = self._filesystem = None
            self._generation += 1
            if dead is not None:
                self.reconnects += 1
                logger.warning('the xenon-grpc server of %s is gone; starting a new one',
                               self.endpoint.address)
            else:
                self.sessions_reopened += 1
                logger.warning('the SSH session to %s is gone; logging in again',
                               self.endpoint.address)
            pause = RECOVER_BACKOFF / 8
            while True:
                try:
                    self._open(dead_server=dead)
                    return
                except HostUnreachableError as exc:
                    if dead is not None and self.server is not dead:
                        dead = None  # replaced already: keep the new server
                    if time.monotonic() + pause > deadline:
                        raise
                    logger.info('%s; trying again in %.2f s', exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, RECOVER_BACKOFF)

    def call(self, operation: Callable[[Any, Any], Any], retry: bool = True,
             deadline: Optional[float] = None) -> Any:
        """Run ``operation(scheduler, filesystem)``; recover from a lost session or server.

        A lost SSH session (the operation did not run) is logged into again and the
        operation tried again, until ``deadline`` (default: :data:`RECOVER_TIMEOUT` s from
        now). A lost server is replaced, but the operation is tried again only when
        ``retry`` says it may run twice, or when it never reached the server.
        """
        deadline = deadline or time.monotonic() + RECOVER_TIMEOUT
        pause = 0.0
        while True:
            scheduler, filesystem, generation = self._current()
            try:
                return operation(scheduler, filesystem)
            except Exception as exc:  # noqa: BLE001 - only a lost session or server is handled
                kind = failure_kind(exc)
                if kind is None or (kind == 'server' and not retry) \
                        or time.monotonic() + pause > deadline:
                    raise
                logger.info('xenon call failed (%s); reconnecting', exc)
            if pause:  # it failed again at once: do not log in in a tight loop
                time.sleep(pause)
            pause = min(max(pause * 2, RECOVER_BACKOFF / 8), RECOVER_BACKOFF)
            self._recover('session' if kind == 'session' else 'server', generation, deadline)

    @property
    def filesystem(self) -> Any:
        return self.handles()[1]

    def close(self) -> None:
        """Close both handles (at exit; an ssh scheduler closed earlier leaks a connection)."""
        with self._lock:
            for handle in (self._scheduler, self._filesystem):
                if handle is not None:
                    try:
                        handle.close()
                    except Exception as exc:  # noqa: BLE001 - the server may be gone at exit
                        logger.debug('closing %r: %s', handle, exc)
            self._scheduler = self._filesystem = None

    # -- remote commands --------------------------------------------------------------------
    def run(self, argv: Sequence[str], stdin: Optional[str] = None,
            timeout: Optional[float] = 60) -> Tuple[int, str, str]:
        """Run ``argv`` on the remote host (a :data:`cluster.batch.Shell`).

        The command goes through the remote login shell as ``sh -c '<quoted argv>'``, so
        every argument arrives exactly as given. Returns (exit code, stdout, stderr); a
        command that outlives ``timeout`` is cancelled and gives exit code 124; 255 says
        that the connection was lost and the command may have run (see
        :func:`.shell.run`: a command is never started twice).
        """
        argv = [str(a) for a in argv]
        self.commands[argv[0]] += 1
        return shell.run(self, argv, stdin, timeout)

    # -- what jobs need ---------------------------------------------------------------------
    @property
    def home(self) -> str:
        """The remote home directory (where sftp starts)."""
        if self._home is None:
            from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
            try:
                self._home = str(self.call(lambda _, fs: fs.get_working_directory()))
            except xe.XenonException as exc:
                raise RemoteError(f'cannot find the home directory on '
                                  f'{self.endpoint.address}: {exc.message}') from None
        return self._home

    def workdir(self, endpoint: Optional[Endpoint] = None) -> str:
        """The absolute remote working directory: the address's path, else the home."""
        path = (endpoint or self.endpoint).workdir
        if path and path.startswith('/~/'):
            path = path[3:]
        if path and path.startswith('/') and path != '/~':
            return path.rstrip('/') or '/'
        relative = (path or '').lstrip('/').lstrip('~').lstrip('/')
        return self.home.rstrip('/') + ('/' + relative if relative else '')

    def system(self, qtype: Optional[str] = None) -> Any:
        """The batch system ``qtype`` (detected when None) run through :meth:`run`.

        One instance per qtype and connection, so one watcher and one status command
        per poll interval for all the jobs of this endpoint.
        """
        with self._lock:
            if not qtype:
                if self._detected is None:
                    self._detected = self.detect_qtype()
                qtype = self._detected
            if qtype not in self._systems:
                self._systems[qtype] = batch.system_class(qtype)(
                    shell=self.run, user=self.endpoint.user, endpoint=self.endpoint)
            return self._systems[qtype]

    def detect_qtype(self) -> str:
        """The first batch system of the registry found on the remote PATH."""
        code, _, err = self.run(['true'])
        if code != 0:  # else every `which` below fails too, and reads as "not installed"
            why = (err.strip().splitlines() or [f'exit code {code}'])[-1]
            raise RemoteError(f'cannot run commands on {self.endpoint.address} to find its '
                              f'batch system: {why}')
        qtype = batch.detect_with(self.run, remote=True)
        if qtype is None:
            programs = ' nor '.join(dict.fromkeys(cls.submit_command for cls in batch.systems()
                                                  if cls.remote))
            raise RemoteError(f'neither {programs} is on the PATH of {self.endpoint.address}; '
                              f'set qtype ({" or ".join(batch.remote_qtypes())}) in the '
                              'profile, or make the batch commands reachable for '
                              'non-interactive ssh logins')
        logger.info('%s runs %s', self.endpoint.address, qtype)
        return qtype

    def check_python(self, python: Optional[str] = None) -> None:
        """Make sure the remote Python can run function jobs (it must import dill); once."""
        python = python or self.endpoint.python
        if python in self._python_ok:
            return
        code, out, err = self.run([python, '-c', 'import sys, dill; print(dill.__version__)'],
                                  timeout=60)
        if code != 0:
            detail = (err.strip().splitlines() or ['exit code %d' % code])[-1]
            raise RemotePythonError(
                f'the remote python {python!r} on {self.endpoint.address} cannot run function '
                f'jobs: it cannot import dill ({detail}); install dill for it (python -m pip '
                f'install --user dill) or set python = /path/to/python in the profile')
        import dill  # heavy: dill
        remote_version = out.strip()
        if remote_version.split('.')[:2] != dill.__version__.split('.')[:2]:
            logger.warning('dill %s on %s, %s here: results may not unpickle', remote_version,
                           self.endpoint.address, dill.__version__)
        self._python_ok.add(python)


_POOL: Dict[tuple, Connection] = {}
_POOL_LOCK = threading.Lock()
_EXIT_REGISTERED = False


def connect(endpoint: Endpoint, server_factory: Optional[ServerFactory] = None) -> Connection:
    """The pooled connection of ``endpoint`` (made, not opened, on first call)."""
    with _POOL_LOCK:
        connection = _POOL.get(endpoint.pool_key)
        if connection is None:
            connection = Connection(endpoint, server_factory)
            _POOL[endpoint.pool_key] = connection
        return connection


def _register_exit() -> None:
    global _EXIT_REGISTERED
    with _POOL_LOCK:
        if not _EXIT_REGISTERED:
            atexit.register(close_all)  # after the server's own atexit: runs before it
            _EXIT_REGISTERED = True


def close_all() -> None:
    """Close every pooled connection and forget them."""
    with _POOL_LOCK:
        connections = list(_POOL.values())
        _POOL.clear()
    for connection in connections:
        connection.close()


def forget(endpoint: Endpoint) -> None:
    """Drop ``endpoint``'s connection from the pool and close it."""
    with _POOL_LOCK:
        connection = _POOL.pop(endpoint.pool_key, None)
    if connection is not None:
        connection.close()


__all__ = ['Connection', 'connect', 'close_all', 'forget', 'default_server_factory',
           'ClusterError']

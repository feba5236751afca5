"""The xenon-grpc server: find the jar and java, start or reuse the JVM, connect, shut down.

``init()`` gives the process-wide default :class:`Server`; everything else in the
package uses it unless a ``server=`` is passed. A :class:`Server` is also a context
manager of its own::

    with Server() as server:
        print(server.scheduler_stub)

The JVM runs in its own process group (and session); stopping the server kills the
whole group, so local jobs started by Xenon's ``local`` adaptor go with it.
"""
from __future__ import annotations

import atexit
import collections
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Deque, Iterator, Optional, Sequence, Union

import grpc

from . import _stubs
from ._stubs import BUILD_HINT
from .exceptions import (DeadlineExceededException, XenonException, XenonServerError,
                         make_exception)
from ._jvm import JAVA_HINT, find_java, free_port, line_level, port_open, verbosity, watchdog
from .jar import BuildError, ensure_jar
from .tls import TlsFiles, ensure_certificates

logger = logging.getLogger(__name__)
jvm_logger = logging.getLogger(__name__ + '.jvm')

HOST = 'localhost'
START_TIMEOUT = 60.0


class Server:
    """One xenon-grpc server, started here or reused, and the channel to it.

    ``port=None`` picks a free port and always starts a new JVM. With a port, a
    server already answering there (with our certificates) is reused and left
    running at the end. ``disable_tls=True`` speaks plaintext: the server listens on
    all interfaces, so only use it on a machine you trust. ``log_level`` is the level
    from which the JVM's output is passed to the ``xenon_backend.server.jvm`` logger.
    ``java_options`` go to the JVM before ``-jar``; e.g. ``-Duser.home=DIR`` makes the
    ssh adaptors read ``DIR/.ssh/known_hosts`` (and ``config``) instead of the user's.
    """

    def __init__(self, port: Optional[int] = None, disable_tls: bool = False,
                 log_level: Union[str, int] = 'WARNING', jar: Optional[Union[str, Path]] = None,
                 tls_dir: Optional[Union[str, Path]] = None,
                 start_timeout: float = START_TIMEOUT,
                 java_options: Sequence[str] = ()) -> None:
        self.port = port
        self.disable_tls = disable_tls
        self.log_level = (logging.getLevelName(log_level.upper()) if isinstance(log_level, str)
                          else int(log_level))
        if not isinstance(self.log_level, int):
            raise ValueError(f'log_level {log_level!r} is not a logging level name')
        self.jar = Path(jar) if jar else None
        self.tls_dir = Path(tls_dir) if tls_dir else None
        self.start_timeout = start_timeout
        self.java_options = list(java_options)
        self.process: Optional[subprocess.Popen] = None
        self.channel: Optional[grpc.Channel] = None
        self.scheduler_stub: Any = None
        self.file_system_stub: Any = None
        self.output_tail: Deque[str] = collections.deque(maxlen=40)
        self._tls: Optional[TlsFiles] = None
        self._readers: list = []
        self._watchdog: Optional[subprocess.Popen] = None
        self._filesystem_locks: dict = {}
        self._filesystem_locks_guard = threading.Lock()

    # -- life cycle -------------------------------------------------------------------
    def start(self, stop_at_exit: bool = True) -> 'Server':
        """Reuse a server answering on ``port`` or start one; return when it answers an RPC."""
        if self.channel is not None:
            return self
        _stubs.modules()  # a clear error about missing stubs before anything starts
        if not self.disable_tls:
            self._tls = ensure_certificates(self.tls_dir)
        if self.port is not None and port_open(self.port):
            self._connect()
            try:
                self.ping(timeout=5.0)
            except XenonException as exc:
                self._close_channel()
                raise XenonServerError('start', None, f'port {self.port} is taken by something '
                                       f'that is not a xenon-grpc server accepting this client '
                                       f'({exc.message})') from None
            logger.info('reusing the xenon-grpc server on port %s', self.port)
            return self
        if self.port is None:
            self.port = free_port()
        self._spawn(watch=stop_at_exit)
        if stop_at_exit:
            atexit.register(self.stop)
        return self

    def _spawn(self, watch: bool) -> None:
        try:
            jar = self.jar or ensure_jar()  # fetched into the user data dir on first use
        except BuildError as exc:
            raise XenonServerError('start', None, str(exc)) from None
        argv = [find_java(), *self.java_options, '-jar', str(jar), '--port', str(self.port)]
        argv += verbosity(self.log_level)
        if self._tls is not None:
            argv += ['--server-cert-chain', str(self._tls.server_cert),
                     '--server-private-key', str(self._tls.server_key),
                     '--client-cert-chain', str(self._tls.ca_cert)]
        started = time.monotonic()
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        logger.info('started xenon-grpc (pid %s) on port %s%s', self.process.pid, self.port,
                    '' if self._tls else ' WITHOUT TLS')
        if watch:
            self._watchdog = watchdog(self.process.pid)
        reader = threading.Thread(target=self._forward_output, args=(self.process,),
                                  name=f'xenon-grpc-{self.port}-output', daemon=True)
        reader.start()
        self._readers.append(reader)
        self._connect()
        deadline = started + self.start_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                reader.join(2.0)
                self.stop()
                raise XenonServerError('start', None, f'xenon-grpc exited with code {code} while '
                                       f'starting: {self._tail()}')
            try:
                self.ping(timeout=1.0)
                break
            except XenonException as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise XenonServerError('start', None, f'xenon-grpc did not answer within '
                                           f'{self.start_timeout:.0f} s ({exc.message}): '
                                           f'{self._tail()}') from None
                time.sleep(0.05)
        logger.info('xenon-grpc answers after %.2f s', time.monotonic() - started)

    def _connect(self) -> None:
        pb2_grpc = _stubs.pb2_grpc()
        target = f'{HOST}:{self.port}'
        options = [('grpc.max_receive_message_length', 64 << 20),
                   ('grpc.max_send_message_length', 64 << 20)]
        if self._tls is None:
            self.channel = grpc.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=self._tls.ca_cert.read_bytes(),
                private_key=self._tls.client_key.read_bytes(),
                certificate_chain=self._tls.client_cert.read_bytes())
            self.channel = grpc.secure_channel(target, credentials, options=options)
        self.scheduler_stub = pb2_grpc.SchedulerServiceStub(self.channel)
        self.file_system_stub = pb2_grpc.FileSystemServiceStub(self.channel)

    def _forward_output(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors='replace').rstrip()
            if not line:
                continue
            self.output_tail.append(line)
            level = line_level(line)
            if level >= self.log_level:
                jvm_logger.log(level, '%s', line)

    def _tail(self) -> str:
        return ' | '.join(self.output_tail) or '(no output)'

    def _close_channel(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.channel = self.scheduler_stub = self.file_system_stub = None

    def stop(self) -> None:
        """Close the channel; if the JVM was started here, kill its whole process group."""
        atexit.unregister(self.stop)
        self._close_channel()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:  # the group is ours to end now
            watchdog.kill()
            watchdog.wait()
            assert watchdog.stdin is not None
            watchdog.stdin.close()
        process, self.process = self.process, None
        if process is None:
            return
        try:
            group = os.getpgid(process.pid)
        except ProcessLookupError:
            group = process.pid  # leader gone; the group id is still its pid
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                continue
            if sig == signal.SIGTERM:  # jobs of the local adaptor may outlive the JVM
                try:
                    os.killpg(group, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            break
        if process.stdout is not None:
            process.stdout.close()
        logger.info('stopped xenon-grpc (pid %s, port %s)', process.pid, self.port)

    def __enter__(self) -> 'Server':
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- calls ------------------------------------------------------------------------
    def filesystem_lock(self, filesystem_id: str) -> threading.Lock:
        """The lock that serialises the calls on one of this server's filesystems."""
        with self._filesystem_locks_guard:
            return self._filesystem_locks.setdefault(filesystem_id, threading.Lock())

    @property
    def owned(self) -> bool:
        """True when the JVM was started by this object."""
        return self.process is not None

    def process_alive(self) -> bool:
        """False when the JVM started here has exited; True for a reused server."""
        return self.process is None or self.process.poll() is None

    def ping(self, timeout: float = 2.0) -> None:
        """One cheap RPC; raises a :class:`XenonException` when the server does not answer."""
        self.call('scheduler', 'getAdaptorNames', _stubs.pb2().Empty(), method='ping',
                  timeout=timeout)

    def alive(self, timeout: float = 2.0) -> bool:
        """True when the server answers an RPC."""
        try:
            self.ping(timeout)
            return True
        except XenonException:
            return False

    def _stub(self, service: str) -> Any:
        if self.channel is None:
            raise XenonServerError(service, None, 'the xenon-grpc server is not started or has '
                                   'been stopped: call xenon_backend.init()')
        return self.scheduler_stub if service == 'scheduler' else self.file_system_stub

    def call(self, service: str, rpc: str, request: Any, *, method: str,
             timeout: Optional[float] = None) -> Any:
        """Call ``rpc`` of ``service`` ('scheduler' or 'filesystem'); errors as XenonException."""
        function: Callable = getattr(self._stub(service), rpc)
        try:
            return function(request, timeout=timeout)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DeadlineExceededException(method, error.code(), (
                    f'no answer from xenon-grpc within the timeout of {timeout} s')) from None
            raise self.translate(method, error) from None

    def stream(self, service: str, rpc: str, request: Any, *, method: str,
               timeout: Optional[float] = None) -> Iterator[Any]:
        """Call a response-streaming ``rpc``; iterate the responses, errors as XenonException."""
        function: Callable = getattr(self._stub(service), rpc)
        responses = function(request, timeout=timeout)
        try:
            yield from responses
        except grpc.RpcError as error:
            raise self.translate(method, error) from None
        finally:
            responses.cancel()

    def translate(self, method: str, error: grpc.RpcError) -> XenonException:
        """The exception for ``error``, saying so clearly when the server itself is gone."""
        exception = make_exception(method, error)
        if error.code() == grpc.StatusCode.UNAVAILABLE and isinstance(exception, XenonServerError):
            if self.process is not None and self.process.poll() is not None:
                return XenonServerError(method, error.code(), (
                    f'the xenon-grpc server (pid {self.process.pid}, port {self.port}) has exited '
                    f'with code {self.process.returncode}; call xenon_backend.init() to start a '
                    f'new one (its schedulers, filesystems and jobs are gone; '
                    f'{error.details()}): {self._tail()}'))
            return XenonServerError(method, error.code(), (
                f'no xenon-grpc server answers on port {self.port} '
                f'({error.details()}); call xenon_backend.init() to start one'))
        return exception

    def __repr__(self) -> str:
        state = 'stopped' if self.channel is None else ('own' if self.owned else 'reused')
        return (f'Server(port={self.port}, tls={not self.disable_tls}, {state}'
                + (f', pid={self.process.pid}' if self.process else '') + ')')


_default: Optional[Server] = None
_default_lock = threading.RLock()


def init(port: Optional[int] = None, do_not_exit: bool = False, disable_tls: bool = False,
         log_level: str = 'WARNING') -> Server:
    """Start (or reuse) the default xenon-grpc server and return it.

    A second call returns the same server while it answers; when it has died, or a
    different port or TLS setting is asked for, a new one replaces it.
    ``do_not_exit=True`` leaves the JVM running when Python exits.

    >>> server = init()            # doctest: +SKIP
    """
    global _default
    with _default_lock:
        current = _default
        if current is not None and current.channel is not None:
            same = ((port is None or port == current.port)
                    and disable_tls == current.disable_tls)
            if same and current.process_alive() and current.alive():
                return current
            logger.warning('replacing the xenon-grpc server on port %s%s', current.port,
                           '' if current.process_alive() else ' (it has died)')
            current.stop()
        server = Server(port=port, disable_tls=disable_tls, log_level=log_level)
        server.start(stop_at_exit=not do_not_exit)
        _default = server
        return server


def default_server() -> Server:
    """The default server, started with :func:`init`'s defaults on first use."""
    with _default_lock:
        if _default is not None and _default.channel is not None:
            return _default
    return init()


def shutdown() -> None:
    """Stop the default server (if this process started it) and forget it."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.stop()
        _default = None


__all__ = ['Server', 'init', 'default_server', 'shutdown', 'find_java', 'free_port', 'port_open',
           'JAVA_HINT',
           'BUILD_HINT']

"""What a failed Xenon call says about the connection, and how long to wait for it to heal.

Used by :mod:`.connection` (which logs in again, or starts a new server) and by
:mod:`.shell` (which must know whether a failed command may have run).
"""
from __future__ import annotations

from typing import Optional

#: seconds a call waits for a lost session or server to come back, when not told
RECOVER_TIMEOUT = 60.0
#: the longest pause between two logins while the host does not answer
RECOVER_BACKOFF = 0.5


def failure_kind(error: Exception) -> Optional[str]:
    """What a failed Xenon call says about the connection.

    ``'session'``: the SSH session is gone (killed sshd processes, a dropped network);
    nothing ran: an interactive job that "failed to start" never ran (Xenon checks
    ``hasRun``), and a closed SFTP client does nothing. ``'unsent'``: the xenon-grpc
    server is gone and the call never reached it. ``'server'``: the server is gone and
    the call may have reached it. None: anything else.
    """
    from xenon_backend import exceptions as xe  # heavy: xenon_backend (grpc)
    if not isinstance(error, xe.XenonException):
        return None
    text = str(error).lower()
    if isinstance(error, (xe.NotConnectedException, xe.FileSystemClosedException)) or any(
            words in text for words in _SESSION_GONE):
        return 'session'
    if isinstance(error, xe.XenonServerError):
        return 'unsent' if 'failed to connect to all addresses' in text else 'server'
    if any(words in text for words in _HANDLE_GONE):
        return 'unsent'  # handles of a server that was replaced: the call did nothing
    return None


_SESSION_GONE = ('interactive job failed to start', 'client is closed', 'session is closed',
                 'session is being closed', 'not connected')
_HANDLE_GONE = ('scheduler not found', 'filesystem not found', 'unknown scheduler',
                'unknown filesystem')

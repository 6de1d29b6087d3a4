"""One server per folder. An flock on the lock file, held for the server's life: the kernel drops it when
the process ends however it ends, so a crashed server never blocks the next one (its socket file, left
behind, is then known to be stale and replaced)."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


class ServerLock:
    def __init__(self, path: Path) -> None:
        self.path, self._fd = path, None

    def acquire(self) -> bool:
        """Take the lock for this process; False when a running server holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)     # closing drops the flock
            self._fd = None


def held_by_a_server(path: Path) -> bool:
    """Whether some live process holds the lock (a server runs, or is starting or stopping)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)           # also drops the shared lock we may have taken
    return False

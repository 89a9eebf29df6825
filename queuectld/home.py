"""The data home: the directory a daemon owns, and the lock that makes it one daemon's.

Everything a daemon keeps on its host lives here: the SQLite store (by
default), the socket, the logs of runs and hooks, and the daemon's id.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

DB_NAME = "queuectl.db"
LOCK_NAME = "queuectld.lock"


class StartupError(Exception):
    """The daemon cannot start; the message says why, in one line."""


class HomeLock:
    """An exclusive flock on a file in the data home, holding the owner's pid."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StartupError(f"cannot open the lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StartupError(
                    f"another queuectld (pid {owner}) is already running on {self.path.parent}"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def prepare_home(home: Path) -> None:
    """Create the data home, private to its owner, and make sure it can be written."""
    os.umask(0o077)
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create data home {home}: {exc.strerror}") from None
    if not os.access(home, os.W_OK):
        if os.statvfs(home).f_flag & os.ST_RDONLY:
            raise StartupError(f"data home {home} is on a read-only file system")
        raise StartupError(f"data home {home} is not writable")

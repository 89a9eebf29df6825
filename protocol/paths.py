"""Where a client and a daemon meet: the data home and the default socket in it.

Both sides resolve these the same way, so `queuectl` finds the daemon that
`queuectld` started without any flag. SYSTEM_SOCKET is where the system unit
(systemd/queuectld.socket) listens; a client that was given no home or socket
falls back to it when no personal daemon answers.
"""

from __future__ import annotations

import os
from pathlib import Path

SOCKET_NAME = "queuectld.sock"
SYSTEM_SOCKET = "/run/queuectl/queuectld.sock"


def data_home(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get("QUEUECTL_HOME")
    if env:
        return Path(env).expanduser().absolute()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state).expanduser().absolute() / "queuectl"


def socket_path(home: Path, explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get("QUEUECTL_SOCKET")
    if env:
        return Path(env).expanduser().absolute()
    return home / SOCKET_NAME


def system_socket_path() -> Path:
    """The system daemon's socket ($QUEUECTL_SYSTEM_SOCKET overrides it, for tests)."""
    return Path(os.environ.get("QUEUECTL_SYSTEM_SOCKET") or SYSTEM_SOCKET)


def is_explicit(home: str | os.PathLike | None, socket: str | os.PathLike | None) -> bool:
    """True when the caller named a home or socket (flag or environment)."""
    return bool(
        home or socket or os.environ.get("QUEUECTL_HOME") or os.environ.get("QUEUECTL_SOCKET")
    )

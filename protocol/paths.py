"""Where a client and a daemon meet: the data home and the default socket in it.

Both sides resolve these the same way, so `queuectl` finds the daemon that
`queuectld` started without any flag.
"""

from __future__ import annotations

import os
from pathlib import Path

SOCKET_NAME = "queuectld.sock"


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

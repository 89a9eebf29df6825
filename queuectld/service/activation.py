"""Socket activation: listening sockets handed over by systemd.

The manager passes them as file descriptors 3, 4, ... and says how many in
LISTEN_FDS, for which process in LISTEN_PID, and under which names in
LISTEN_FDNAMES (colon-separated, from FileDescriptorName=). The variables are
removed once read, as sd_listen_fds() does, so no child takes the sockets for
its own.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from dataclasses import dataclass

log = logging.getLogger("queuectld.activation")

LISTEN_FDS_START = 3
ACTIVATION_VARIABLES = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


class ActivationError(Exception):
    """The passed sockets cannot be used; the message says why."""


@dataclass
class PassedSocket:
    name: str
    sock: socket.socket

    @property
    def is_unix_stream(self) -> bool:
        return self.sock.family == socket.AF_UNIX and self.sock.type == socket.SOCK_STREAM

    def describe(self) -> str:
        try:
            address = self.sock.getsockname()
        except OSError:
            address = "?"
        if isinstance(address, bytes):  # abstract namespace
            address = "@" + address[1:].decode(errors="replace")
        return f"{address} (fd {self.sock.fileno()}, name {self.name})"


def passed_sockets(environ: dict[str, str] | os._Environ = os.environ) -> list[PassedSocket]:
    """The sockets systemd passed to this process; [] when it passed none."""
    count_text = environ.get("LISTEN_FDS")
    pid_text = environ.get("LISTEN_PID")
    if not count_text:
        return []
    if pid_text and pid_text != str(os.getpid()):
        return []  # meant for another process (we were started by the one it was for)
    try:
        count = int(count_text)
    except ValueError:
        raise ActivationError(f"LISTEN_FDS={count_text!r} is not a number") from None
    names = environ.get("LISTEN_FDNAMES", "").split(":") if environ.get("LISTEN_FDNAMES") else []
    sockets = []
    for index in range(count):
        fd = LISTEN_FDS_START + index
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            raise ActivationError(
                f"LISTEN_FDS={count} but file descriptor {fd} is not open"
            ) from None
        # Our workers and the jobs they start must never inherit a listening socket.
        fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            raise ActivationError(
                f"file descriptor {fd} passed by systemd is not a socket"
            ) from None
        name = names[index] if index < len(names) and names[index] else "unknown"
        sockets.append(PassedSocket(name, sock))
    return sockets


def forget_environment() -> None:
    for name in ACTIVATION_VARIABLES:
        os.environ.pop(name, None)


def control_sockets(sockets: list[PassedSocket]) -> list[PassedSocket]:
    """The passed sockets the request server listens on: the Unix stream ones.

    Others (a datagram socket, or an inet socket meant for something else) are
    left alone and named in the log, so a unit file mistake is visible.
    """
    chosen = []
    for passed in sockets:
        if passed.is_unix_stream:
            passed.sock.setblocking(False)
            chosen.append(passed)
        else:
            log.warning("ignoring socket passed by systemd: %s", passed.describe())
    return chosen

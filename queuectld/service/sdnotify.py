"""sd_notify: tell the service manager how the daemon is doing.

systemd passes the address of a datagram socket in NOTIFY_SOCKET (a path, or a
name in the abstract namespace when it starts with '@'). Each datagram holds
newline-separated VAR=value lines: READY=1, STATUS=..., STOPPING=1, WATCHDOG=1.
Without NOTIFY_SOCKET every method is a no-op, so callers never need to ask
whether they run under systemd.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("queuectld.sdnotify")

# Read once, then removed from the environment: the worker processes (and the jobs
# they start) must not talk to the service manager as if they were the daemon.
NOTIFY_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _address(text: str) -> str | bytes:
    if text.startswith("@"):
        return b"\0" + text[1:].encode()
    return text


class Notifier:
    def __init__(self, address: str | None):
        self.address = address or None
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environment(cls) -> Notifier:
        return cls(os.environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send one datagram of VAR=value lines; False if it could not be sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode(), _address(self.address))
            return True
        except OSError as exc:
            # The manager going away must never take the daemon down; say so once.
            if not self._warned:
                self._warned = True
                log.warning("cannot notify the service manager at %s: %s", self.address, exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        lines = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            lines.append(f"STATUS={status}")
        return self.send(*lines)

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self, status: str | None = None) -> bool:
        lines = ["STOPPING=1"]
        if status:
            lines.append(f"STATUS={status}")
        return self.send(*lines)

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: dict[str, str] | os._Environ = os.environ) -> float | None:
    """The watchdog timeout in seconds asked for by the manager, or None.

    WATCHDOG_PID, when set, names the process meant; anyone else ignores it.
    """
    raw = environ.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(raw)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a whole number", raw)
        return None
    return usec / 1_000_000 if usec > 0 else None


def forget_environment() -> None:
    for name in NOTIFY_VARIABLES:
        os.environ.pop(name, None)

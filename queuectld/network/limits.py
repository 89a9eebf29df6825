"""Limits on what a client submits or makes the daemon keep, shared by the handlers.

Each check raises a ProtocolError naming the setting to raise: `too_large`
for a size or a count, `unavailable` for requests held open at once (those
pass). Environments lose the connection's private variables first, so a token
neither counts against the limit nor reaches a job. The limits are passed as
numbers, read from the settings once per request by the caller.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager

from protocol.errors import ErrorCode, ProtocolError
from queuectld.network.runas import public_environ

# Files a daemon keeps open besides its connections and its workers' sockets:
# the store and its journal, the lock, listening sockets, log files, hooks.
FILES_KEPT_BACK = 64


def connection_room(workers: int) -> tuple[int, int] | None:
    """(open-file limit, most connections it leaves room for); None if unlimited.

    A connection beyond it would not be refused cleanly: accept() fails, and so
    does the next worker, log file or store journal the daemon opens.
    """
    files, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if files == resource.RLIM_INFINITY:
        return None
    return files, max(1, files - FILES_KEPT_BACK - workers)


def check_count(op: str, count: int, maximum: int, what: str, setting: str) -> None:
    """Refuse one more of `count` things when there are `maximum` already."""
    if count >= maximum:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"{op}: there are already {count} {what} ({setting} is {maximum})",
        )


class Waiting:
    """Requests of one kind that hold the daemon's attention while they wait
    (a timer, a subscription, a file polled five times a second)."""

    def __init__(self, what: str, setting: str):
        self.what = what
        self.setting = setting
        self.count = 0

    @contextmanager
    def slot(self, maximum: int) -> Iterator[None]:
        if self.count >= maximum:
            raise ProtocolError(
                ErrorCode.UNAVAILABLE,
                f"{self.count} {self.what} are waiting already ({self.setting} is "
                f"{maximum}); try again later",
            )
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


def environment_bytes(environ: dict[str, str]) -> int:
    # UTF-8 lengths add up, so the names and the values are each joined and
    # encoded once: every request carries an environment of dozens of variables.
    return len("".join(environ).encode()) + len("".join(environ.values()).encode())


def check_command(command: str, max_bytes: int, what: str) -> None:
    # UTF-8 takes at most 4 bytes a character: most commands need no encoding to check.
    if len(command) * 4 > max_bytes and len(command.encode()) > max_bytes:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"{what}: command exceeds max-command-bytes {max_bytes}"
        )


def submitter_environment(cwd: str, environ: dict[str, str], max_bytes: int) -> dict[str, str]:
    """The environment jobs inherit from the client, without its private variables."""
    environ = public_environ(environ)
    size = len(cwd.encode()) + environment_bytes(environ)
    if size > max_bytes:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"the submitting environment ({size} bytes) exceeds max-env-bytes {max_bytes}",
        )
    return environ


def job_environment(env: dict[str, str] | None, max_bytes: int, what: str) -> dict[str, str]:
    """A job's own `env` additions, checked like the submitter's."""
    if not env:
        return {}
    env = public_environ(env)
    if environment_bytes(env) > max_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"{what}: env exceeds max-env-bytes {max_bytes}")
    return env

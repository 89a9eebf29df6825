"""Which local user a job runs as.

A daemon run by an ordinary user runs every job as that user. A daemon run by
root (say a system service opened to a group with --socket-group) must not
hand root to whoever can reach its socket: a job submitted over the Unix
socket runs as the submitting user, known from SO_PEERCRED; a job submitted
by root runs as root (the daemon logs a warning at start); a job submitted over
TCP has no local user and is refused unless the daemon was started with
--allow-root.
"""

from __future__ import annotations

import os

from protocol.errors import ErrorCode, ProtocolError
from queuectld.network.peers import Peer

# Variables that authenticate a client; they never reach a job's environment.
PRIVATE_ENV = ("QUEUECTL_TOKEN", "QUEUECTL_TOKEN_FILE")


def run_identity(peer: Peer | None, allow_root: bool) -> tuple[int | None, int | None]:
    """(uid, gid) to run a job as; (None, None) means the daemon's own user."""
    if os.geteuid() != 0 or peer is None:
        return None, None
    if peer.kind == "unix":
        if peer.uid in (None, 0):
            return None, None
        return peer.uid, peer.gid
    if allow_root:
        return None, None
    raise ProtocolError(
        ErrorCode.UNAUTHORIZED,
        "this daemon runs as root and a TCP client's job would run as root; "
        "start queuectld as an unprivileged user, or with --allow-root",
    )


def public_environ(environ: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in PRIVATE_ENV}

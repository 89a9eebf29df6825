"""Who is on the other end of a connection, and whether they may use the daemon.

Unix socket peers are identified by the kernel (SO_PEERCRED, SO_PEERGROUPS),
not by anything they say. TCP peers have no local identity: they prove they
know the shared token in their first request (see server.py).
"""

from __future__ import annotations

import contextvars
import os
import socket
import struct
from dataclasses import dataclass, field

SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux >= 4.13
_UCRED = struct.Struct("3i")


@dataclass
class Peer:
    kind: str  # "unix" | "tcp"
    uid: int | None = None
    gid: int | None = None
    pid: int | None = None
    groups: tuple[int, ...] = field(default_factory=tuple)
    address: str = ""
    authenticated: bool = False

    def describe(self) -> str:
        if self.kind == "unix":
            return f"pid {self.pid} uid {self.uid}"
        return self.address


# The peer of the request being handled; handlers read it (run-as identity).
CURRENT_PEER: contextvars.ContextVar[Peer | None] = contextvars.ContextVar(
    "queuectl_peer", default=None
)


def unix_peer(sock: socket.socket) -> Peer:
    pid, uid, gid = _UCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    )
    return Peer("unix", uid=uid, gid=gid, pid=pid, groups=_peer_groups(sock, pid))


def _peer_groups(sock: socket.socket, pid: int) -> tuple[int, ...]:
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * 1024)
        return struct.unpack(f"{len(raw) // 4}I", raw)
    except OSError:
        pass
    try:  # older kernels: the peer's supplementary groups from /proc (racy, still useful)
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("Groups:"):
                    return tuple(int(g) for g in line.split()[1:])
    except (OSError, ValueError):
        pass
    return ()


class UnixAccess:
    """Policy for local peers: the daemon's own user, root, and one optional group."""

    def __init__(self, socket_group: int | None = None):
        self.owner = os.geteuid()
        self.socket_group = socket_group

    def allows(self, peer: Peer) -> bool:
        if peer.uid in (0, self.owner):
            return True
        group = self.socket_group
        return group is not None and (peer.gid == group or group in peer.groups)

    def refusal(self, peer: Peer) -> str:
        extra = f" or members of group {self.socket_group}" if self.socket_group is not None else ""
        return (
            f"uid {peer.uid} may not use this daemon: it serves uid {self.owner}{extra} "
            "(see queuectld --socket-group)"
        )

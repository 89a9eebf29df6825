"""Where the daemon listens: its Unix socket (its own, or the one systemd passed),
and TCP when asked for.

A socket of our own is bound 0600 (0660 for --socket-group) and removed at stop;
a socket systemd passed belongs to systemd, which keeps listening on it so that
the next client starts the daemon again, and is left alone.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from queuectld.home import StartupError
from queuectld.network.peers import UnixAccess
from queuectld.network.server import Server
from queuectld.network.tcp import TcpSettings
from queuectld.service import activation

log = logging.getLogger("queuectld")

# Connections the kernel queues before the server accepts them.
BACKLOG = 512


class Listeners:
    def __init__(
        self,
        socket_path: Path,
        passed: list[activation.PassedSocket],
        access: UnixAccess,
        tcp: TcpSettings | None,
    ):
        self.socket_path = socket_path
        self.passed = passed
        self.access = access
        self.tcp = tcp
        self.socket_activated = False

    async def open(self, server: Server) -> None:
        """Listen on every socket; StartupError (and nothing left listening) if one fails."""
        try:
            for sock in self._unix_sockets():
                await server.listen_unix(sock)
            if self.tcp is not None:
                await self._listen_tcp(server, self.tcp)
        except BaseException:
            await server.close()
            raise

    def close(self) -> None:
        """Remove our own socket file (after the server stopped accepting)."""
        if self.socket_activated:
            return
        try:
            self.socket_path.unlink()
        except OSError:
            pass  # gone already, or the file system turned read-only

    def _unix_sockets(self) -> list[socket.socket]:
        """The socket systemd passed (socket activation), or one we bind ourselves."""
        if not self.passed:
            return [self._bind()]
        chosen = activation.control_sockets(self.passed)
        if not chosen:
            raise StartupError("systemd passed sockets, but none is a Unix stream socket")
        self.socket_activated = True
        path = chosen[0].sock.getsockname()
        if isinstance(path, str) and path:
            self.socket_path = Path(path)
        for passed in chosen:
            log.info(
                "listening on the socket passed by systemd: %s",
                passed.describe(),
                extra={"event": "socket_passed", "fd_name": passed.name},
            )
        self._open_passed_socket_to_its_group()  # before the first accept
        return [passed.sock for passed in chosen]

    def _bind(self) -> socket.socket:
        path = self.socket_path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            # We hold the home lock, so whatever answers here is not a live daemon of
            # this home; but never unlink something that is not a socket.
            if not path.is_socket():
                raise StartupError(f"{path} exists and is not a socket; refusing to replace it")
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
        except OSError as exc:
            sock.close()
            if len(str(path)) > 100:
                raise StartupError(f"cannot bind {path}: path too long for a Unix socket") from None
            raise StartupError(f"cannot bind {path}: {exc.strerror}") from None
        self._restrict(path)
        sock.listen(BACKLOG)
        sock.setblocking(False)
        return sock

    def _restrict(self, path: Path) -> None:
        """0600 by default; with --socket-group, 0660 for that group, and its
        directory made traversable (not listable) by the group alone."""
        group = self.access.socket_group
        if group is None:
            os.chmod(path, 0o600)
            return
        os.chown(path, -1, group)
        os.chmod(path, 0o660)
        parent = path.parent
        if parent.stat().st_uid == os.geteuid():
            os.chown(parent, -1, group)
            os.chmod(parent, 0o710)
        else:
            log.warning("%s is not ours: make sure group members can reach the socket", parent)

    def _open_passed_socket_to_its_group(self) -> None:
        """A socket systemd passed was opened to a group by its unit (SocketGroup=,
        SocketMode=0660): let that group in, as --socket-group would."""
        if self.access.socket_group is not None:
            return
        try:
            info = self.socket_path.stat()
        except OSError:
            return
        if info.st_mode & 0o060:
            self.access.socket_group = info.st_gid
            log.info(
                "members of group %d may use the socket passed by systemd",
                info.st_gid,
                extra={"event": "socket_group", "gid": info.st_gid},
            )

    @staticmethod
    async def _listen_tcp(server: Server, tcp: TcpSettings) -> None:
        try:
            await server.listen_tcp(tcp.host, tcp.port, tcp.ssl_context)
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {tcp.host}:{tcp.port}: {exc.strerror or exc}"
            ) from None
        log.info(
            "listening on %s:%d (%s, token required)",
            tcp.host,
            tcp.port,
            "TLS" if tcp.ssl_context else "plain TCP, loopback only",
        )

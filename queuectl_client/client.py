"""A blocking client for the queuectld protocol.

    from queuectl_client import Client
    with Client() as client:
        [job_id] = client.enqueue({"command": "make test"})
        client.wait([job_id])

The client never touches the database; everything goes through the daemon's
socket. Which socket: the one named by `socket`/QUEUECTL_SOCKET, else the one in
the data home (`home`/QUEUECTL_HOME, else ~/.local/state/queuectl). When
neither a home nor a socket was named and no personal daemon answers, the
system daemon's socket (/run/queuectl/queuectld.sock, systemd/queuectld.socket)
is used if it exists; only when there is none does the client start a personal
daemon (unless told not to), like gpg-agent.
"""

from __future__ import annotations

import os
import select
from _socket import AF_UNIX, SHUT_RDWR, SOCK_STREAM
from _socket import socket as unix_socket
from collections.abc import Iterator
from typing import Any

from protocol.envelope import request
from protocol.errors import ProtocolError
from protocol.framing import MAX_FRAME_BYTES, FrameDecoder, FrameError, pack_frame
from protocol.paths import data_home, is_explicit, socket_path, system_socket_path
from queuectl_client.calls import OpCalls


class DaemonUnreachable(Exception):
    """No daemon answered (and none could be started)."""


class BadArgument(ValueError):
    """An argument the protocol cannot carry (nothing was sent); the message names it."""


class Client(OpCalls):
    def __init__(
        self,
        home: str | os.PathLike | None = None,
        socket: str | os.PathLike | None = None,
        autostart: bool | None = None,
        connect_timeout: float = 10.0,
        on_autostart: Any = None,
        connect: str | None = None,
        token: str | None = None,
        token_file: str | None = None,
        tls_ca: str | None = None,
    ):
        self.home = data_home(home)
        self.socket_path = socket_path(self.home, socket)
        # A daemon on another host: tcp:// or tls:// (see remote.py); never autostarted.
        self.connect_url = connect or os.environ.get("QUEUECTL_CONNECT") or None
        self.token = token or os.environ.get("QUEUECTL_TOKEN") or None
        self.token_file = token_file or os.environ.get("QUEUECTL_TOKEN_FILE") or None
        self.tls_ca = tls_ca or os.environ.get("QUEUECTL_TLS_CA") or None
        # Only a client told nothing may wander to the system daemon's socket.
        self.may_use_system_socket = not is_explicit(home, socket)
        if autostart is None:
            autostart = os.environ.get("QUEUECTL_NO_AUTOSTART", "") in ("", "0")
        self.autostart = autostart and self.connect_url is None
        self.connect_timeout = connect_timeout
        self.on_autostart = on_autostart
        self._sock: Any = None
        self._decoder = FrameDecoder(MAX_FRAME_BYTES)
        self._pending: list[dict] = []
        self._next_id = 1

    # -- connection --------------------------------------------------------

    def connect(self) -> Client:
        if self._sock is not None:
            return self
        if self.connect_url is not None:
            self._connect_tcp()
            return self
        try:
            self._sock = self._open()
        except OSError as first_error:
            if self._use_system_daemon():
                return self
            if not self.autostart or isinstance(first_error, PermissionError):
                reason = first_error.strerror or first_error
                if isinstance(first_error, PermissionError):
                    raise DaemonUnreachable(
                        f"may not connect to {self.socket_path} ({reason}): the daemon "
                        "belongs to another user"
                    ) from None
                raise DaemonUnreachable(
                    f"no daemon is listening on {self.socket_path} ({reason})"
                ) from None
            from queuectl_client.autostart import start_daemon

            pid = start_daemon(self.home, self.socket_path, self.connect_timeout)
            if pid is not None and self.on_autostart is not None:
                self.on_autostart(pid, self.home)
            self._sock = self._open()
        return self

    def _use_system_daemon(self) -> bool:
        """Connect to the system daemon's socket when it exists (systemd listens there)."""
        if not self.may_use_system_socket:
            return False
        system = system_socket_path()
        if not system.is_socket():
            return False
        try:
            self._sock = self._open(system)
        except OSError as exc:
            raise DaemonUnreachable(
                f"no daemon answers on {self.socket_path}, and the system daemon's socket "
                f"{system} refuses the connection ({exc.strerror or exc})"
            ) from None
        self.socket_path = system
        return True

    def _open(self, path: os.PathLike | None = None) -> unix_socket:
        # The C type that socket.socket extends, without socket.py: that module turns
        # every address family and flag into enums when imported, which costs a CLI
        # command more than its requests (docs/BENCHMARKS.md). A Unix socket needs
        # none of them.
        sock = unix_socket(AF_UNIX, SOCK_STREAM)
        try:
            sock.settimeout(self.connect_timeout)
            sock.connect(str(path or self.socket_path))
            sock.settimeout(None)
        except OSError:
            sock.close()
            raise
        return sock

    def _connect_tcp(self) -> None:
        from queuectl_client.remote import RemoteError, open_tcp, read_token, tls_context

        try:
            tls_context(self.connect_url, self.tls_ca)  # a bad URL or CA file is said first
            token = self.token or (read_token(self.token_file) if self.token_file else None)
        except RemoteError as exc:
            raise DaemonUnreachable(str(exc)) from None
        if token is None:
            raise DaemonUnreachable(
                f"{self.connect_url} needs a token: give --token-file (or QUEUECTL_TOKEN_FILE)"
            )
        try:
            self._sock = open_tcp(self.connect_url, self.tls_ca, self.connect_timeout)
        except RemoteError as exc:
            raise DaemonUnreachable(str(exc)) from None
        except OSError as exc:
            reason = getattr(exc, "reason", None) or exc.strerror or exc
            raise DaemonUnreachable(
                f"cannot reach the daemon at {self.connect_url} ({reason})"
            ) from None
        self._decoder = FrameDecoder(MAX_FRAME_BYTES)
        # The daemon lets a TCP client do nothing before this.
        try:
            self.call("hello", client="queuectl-python", token=token)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._pending = []
        if self._sock is not None:
            sock, self._sock = self._sock, None
            # shutdown() first: it wakes a thread blocked in recv() on this socket
            # (a `watch` read from another thread), which close() alone does not.
            try:
                sock.shutdown(SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def __enter__(self) -> Client:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request -------------------------------------------------------

    def call(self, op: str, **args: Any) -> Any:
        """Send one request and return its result; raise ProtocolError on an error reply."""
        args = {k: v for k, v in args.items() if v is not None}
        try:
            frame = pack_frame(request(op, args, self._next_id))
        except (OverflowError, ValueError, TypeError) as exc:
            # Before connecting: a request that cannot be sent must not start a daemon.
            raise BadArgument(_unpackable(op, args, exc)) from None
        self._next_id += 1
        self._drop_if_closed_by_daemon()
        self.connect()
        try:
            self._sock.sendall(frame)
            response = self._receive()
        except (OSError, FrameError) as exc:
            # A daemon that refuses a connection (not authorized, too many
            # connections) answers first and then closes: show its reason.
            response = self._refusal()
            self.close()
            if response is None:
                raise DaemonUnreachable(f"lost the connection to the daemon: {exc}") from None
        if response.get("ok"):
            return response.get("result")
        raise ProtocolError.from_wire(response.get("error") or {})

    def _refusal(self) -> dict | None:
        """The error frame a closing daemon left for us, if any."""
        try:
            self._sock.settimeout(1.0)
            response = self._receive()
        except Exception:
            return None
        return response if response.get("ok") is False else None

    def _drop_if_closed_by_daemon(self) -> None:
        """Forget a connection the daemon closed while we were idle (client-timeout).

        Nothing is pending on it, so reconnecting cannot repeat a request. An idle
        connection with anything to read has been closed: the daemon only ever
        sends answers, and the last one was read.
        """
        if self._sock is None:
            return
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            readable = [self._sock]
        if readable:
            self.close()
            self._decoder = FrameDecoder(MAX_FRAME_BYTES)

    def _stream(self) -> Iterator[dict]:
        """The frames of a stream opened by the last request, until it ends."""
        try:
            while True:
                try:
                    frame = self._receive()
                except (OSError, FrameError) as exc:
                    if self._sock is None:
                        return  # closed by this client: the end it asked for
                    raise DaemonUnreachable(f"lost the connection to the daemon: {exc}") from None
                if "stream" in frame:
                    yield frame["stream"]
                elif frame.get("ok") is False:
                    raise ProtocolError.from_wire(frame.get("error") or {})
        finally:
            self.close()

    def _receive(self) -> dict:
        # Answers come one per request; only a stream (`watch`) sends frames
        # unasked, and several may arrive in one read: those wait their turn here.
        if self._pending:
            return self._pending.pop(0)
        while True:
            data = self._sock.recv(256 * 1024)
            if not data:
                raise ConnectionError("the daemon closed the connection")
            messages = self._decoder.feed(data)
            if messages:
                self._pending = messages[1:]
                return messages[0]


def _unpackable(op: str, args: dict, error: Exception) -> str:
    """Which argument MessagePack refused, and why, in one line.

    Looked for only once packing failed: the search costs many times the packing
    of a large batch (and its module, with the validator, is not loaded before).
    """
    from protocol.schema import OUT_OF_RANGE, find_value, out_of_range

    path = find_value(args, out_of_range)
    if path is not None:
        return f"{op}: field {path!r} {OUT_OF_RANGE}"
    path = find_value(args, _not_utf8)
    if path is not None:
        return f"{op}: field {path!r} is not valid UTF-8"
    return f"{op}: an argument cannot be sent: {error}"


def _not_utf8(value: object) -> bool:
    # Lone surrogates: what Python makes of bytes in argv or a file name that are
    # not UTF-8.
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False

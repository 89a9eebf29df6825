"""The request server: framed msgpack over a stream socket, one task per client.

Each connection reads frames, answers each request in order, and is closed
on a framing error (the stream can no longer be trusted). A client that stops
reading its responses is dropped after a write timeout rather than holding
daemon memory forever.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import Any

from protocol.errors import ErrorCode, ProtocolError
from protocol.framing import MAX_FRAME_BYTES, FrameDecoder, FrameError, FrameTooLarge, pack_frame
from protocol.messages import error_response, ok_response, parse_request
from queuectld.handlers import Handlers

log = logging.getLogger("queuectld.server")

WRITE_TIMEOUT = 30.0
READ_CHUNK = 256 * 1024


class Server:
    def __init__(
        self, handlers: Handlers, max_frame: int = MAX_FRAME_BYTES, max_connections: int = 1024
    ):
        self.handlers = handlers
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.connections: set[asyncio.Task] = set()
        self._servers: list[asyncio.AbstractServer] = []

    async def listen_unix(self, sock: socket.socket) -> None:
        server = await asyncio.start_unix_server(self._accept, sock=sock, limit=READ_CHUNK)
        self._servers.append(server)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self.connections) >= self.max_connections:
            log.warning(
                "refused a connection from %s: %d connections already open",
                _describe_peer(writer),
                len(self.connections),
                extra={"event": "connection_refused", "client": _describe_peer(writer)},
            )
            await self._send(
                writer,
                error_response(None, ProtocolError(ErrorCode.TOO_LARGE, "too many connections")),
            )
            writer.close()
            return
        self.connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        except asyncio.CancelledError:
            # close() cancels open connections at shutdown. Ending the task normally
            # matters on Python < 3.12, whose stream protocol calls task.exception()
            # on a cancelled task and logs a spurious error with a traceback.
            pass
        finally:
            self.connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder(self.max_frame)
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            try:
                messages = decoder.feed(data)
            except FrameError as exc:
                for message in exc.messages:
                    await self._send(writer, await self.answer(message))
                code = (
                    ErrorCode.TOO_LARGE if isinstance(exc, FrameTooLarge) else ErrorCode.BAD_REQUEST
                )
                log.warning(
                    "dropped client %s: bad frame: %s",
                    _describe_peer(writer),
                    exc,
                    extra={"event": "client_bad_frame", "client": _describe_peer(writer)},
                )
                await self._send(writer, error_response(None, ProtocolError(code, str(exc))))
                return
            for message in messages:
                response = await self.answer(message)
                if not response.get("ok"):
                    _log_refusal(writer, message, response)
                await self._send(writer, response)

    async def answer(self, message: dict) -> dict:
        raw_id = message.get("id")
        valid_id = isinstance(raw_id, int) and not isinstance(raw_id, bool)
        request_id: Any = raw_id if valid_id else None
        try:
            request_id, op, args = parse_request(message)
            result = await self.handlers.handle(op, args)
            return ok_response(request_id, result)
        except ProtocolError as exc:
            return error_response(request_id, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("request %r failed", message.get("op"))
            return error_response(
                request_id, ProtocolError(ErrorCode.INTERNAL, f"internal error: {exc}")
            )

    async def _send(self, writer: asyncio.StreamWriter, response: dict) -> None:
        writer.write(pack_frame(response))
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)


def _log_refusal(writer: asyncio.StreamWriter, message: Any, response: dict) -> None:
    """One line per request answered with an error; internal errors are logged in answer()."""
    error = response.get("error") or {}
    if error.get("code") == ErrorCode.INTERNAL.value:
        return
    op = message.get("op") if isinstance(message, dict) else None
    peer = _describe_peer(writer)
    log.info(
        "request %s from %s refused: %s: %s",
        op if isinstance(op, str) else "?",
        peer,
        error.get("code"),
        error.get("message"),
        extra={
            "event": "request_refused",
            "op": op if isinstance(op, str) else None,
            "client": peer,
            "code": error.get("code"),
            "error": error.get("message"),
        },
    )


_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def _describe_peer(writer: asyncio.StreamWriter) -> str:
    """'pid 123 uid 1000' for a local client (SO_PEERCRED), else its address."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return "unknown client"
    if sock.family == socket.AF_UNIX:
        try:
            pid, uid, _ = _PEERCRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            )
            return f"pid {pid} uid {uid}"
        except OSError:
            return "local client"
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)

"""The request server: framed msgpack over stream sockets, one task per client.

Each connection reads frames and answers each request in order. Nothing a
client sends or fails to send can hold the daemon: the number of connections
is capped, a frame's length is checked before its body is read, a request
must arrive within `client-timeout` of the previous answer (a silent client, a
truncated frame, a slow drip), and an answer must be taken within the same
time (a client that never reads). A framing error closes the connection:
the stream can no longer be trusted. Every refusal is a typed error frame
first, when the socket still takes one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from protocol.envelope import error_response, ok_response
from protocol.errors import ErrorCode, ProtocolError
from protocol.framing import FrameDecoder, FrameError, FrameTooLarge, pack_frame
from protocol.messages import parse_request
from queuectld.config import Config
from queuectld.network.peers import CURRENT_PEER, Peer, UnixAccess, unix_peer
from queuectld.network.stream import Stream
from queuectld.network.tcp import token_matches

log = logging.getLogger("queuectld.server")

READ_CHUNK = 256 * 1024
# Bytes waiting to be sent above which an answer waits for the client to read them.
DRAIN_ABOVE = 64 * 1024
REFUSAL_WRITE_TIMEOUT = 1.0
BAD_TOKEN_DELAY = 0.5  # slows down guessing


class Server:
    def __init__(
        self,
        handle: Callable[[str, dict], Awaitable[Any]],
        config: Config,
        unix_access: UnixAccess | None = None,
        token: bytes | None = None,
    ):
        self.handle = handle  # answers one op: the handler table
        self.config = config
        self.unix_access = unix_access or UnixAccess()
        self.token = token
        self.connections: set[asyncio.Task] = set()
        self.refused = 0
        self._servers: list[asyncio.AbstractServer] = []

    # -- listening -----------------------------------------------------------

    async def listen_unix(self, sock: socket.socket) -> None:
        server = await asyncio.start_unix_server(self._accept_unix, sock=sock, limit=READ_CHUNK)
        self._servers.append(server)

    async def listen_tcp(self, host: str, port: int, context: ssl.SSLContext | None) -> None:
        server = await asyncio.start_server(
            self._accept_tcp,
            host,
            port,
            limit=READ_CHUNK,
            ssl=context,
            ssl_handshake_timeout=self.config["client-timeout"] if context else None,
        )
        self._servers.append(server)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)

    # -- one connection ------------------------------------------------------

    async def _accept_unix(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            peer = unix_peer(writer.get_extra_info("socket"))
        except OSError:
            writer.close()
            return
        if not self.unix_access.allows(peer):
            log.warning(
                "refused a connection from %s: not allowed to use this daemon",
                peer.describe(),
                extra={"event": "connection_unauthorized", "client": peer.describe()},
            )
            await self._refuse(writer, ErrorCode.UNAUTHORIZED, self.unix_access.refusal(peer))
            return
        peer.authenticated = True
        await self._run_connection(reader, writer, peer)

    async def _accept_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        address = writer.get_extra_info("peername")
        where = f"{address[0]}:{address[1]}" if address else "tcp"
        await self._run_connection(reader, writer, Peer("tcp", address=where))

    async def _run_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer
    ) -> None:
        limit = self.config["max-connections"]
        if len(self.connections) >= limit:
            log.warning(
                "refused a connection from %s: %d connections already open",
                peer.describe(),
                len(self.connections),
                extra={"event": "connection_refused", "client": peer.describe()},
            )
            await self._refuse(
                writer,
                ErrorCode.UNAVAILABLE,
                f"too many connections (max-connections is {limit}); try again later",
            )
            return
        task = asyncio.current_task()
        self.connections.add(task)
        CURRENT_PEER.set(peer)
        try:
            await self._serve(reader, writer, peer)
        except (ConnectionError, asyncio.TimeoutError, ssl.SSLError, OSError):
            pass
        except asyncio.CancelledError:
            # close() cancels open connections at shutdown. Ending the task normally
            # matters on Python < 3.12, whose stream protocol calls task.exception()
            # on a cancelled task and logs a spurious error with a traceback.
            pass
        finally:
            self.connections.discard(task)
            _close(writer)

    async def _refuse(self, writer: asyncio.StreamWriter, code: ErrorCode, message: str) -> None:
        self.refused += 1
        await self._send_error(writer, code, message)
        _close(writer)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer
    ) -> None:
        loop = asyncio.get_running_loop()
        decoder = FrameDecoder(self.config["max-frame-bytes"])
        # Each wait for a request is held to the client-timeout it began under: a
        # change reaches an open connection at its next wait, never in the middle.
        timeout = self.config["client-timeout"]
        deadline = loop.time() + timeout
        while True:
            try:
                data = await _read_before(reader, deadline)
            except asyncio.TimeoutError:
                what = "an incomplete request" if decoder.pending_bytes else "no request"
                await self._send_error(
                    writer,
                    ErrorCode.TIMEOUT,
                    f"{what} after {timeout:g} s (client-timeout); closing the connection",
                )
                return
            if not data:
                return
            try:
                messages = decoder.feed(data)
            except FrameError as exc:
                # Answer the whole requests that came before the bad frame first.
                if not await self._answer_all(writer, peer, exc.messages):
                    return
                too_large = isinstance(exc, FrameTooLarge)
                code = ErrorCode.TOO_LARGE if too_large else ErrorCode.BAD_REQUEST
                log.warning(
                    "dropped client %s: bad frame: %s",
                    peer.describe(),
                    exc,
                    extra={"event": "client_bad_frame", "client": peer.describe()},
                )
                await self._send_error(writer, code, f"{exc}; closing the connection")
                return
            if not await self._answer_all(writer, peer, messages, reader):
                return
            if messages:
                timeout = self.config["client-timeout"]
                deadline = loop.time() + timeout

    async def _answer_all(
        self,
        writer: asyncio.StreamWriter,
        peer: Peer,
        messages,
        reader: asyncio.StreamReader | None = None,
    ) -> bool:
        """Answer requests in order; False when the connection must close."""
        for message in messages:
            if not peer.authenticated:
                if not await self._authenticate(writer, peer, message):
                    return False
                continue
            response = await self.answer(message)
            stream = response.get("result")
            if isinstance(stream, Stream):
                response["result"] = stream.result
                await self._send(writer, response, self.config["client-timeout"])
                if reader is not None:  # None: a bad frame follows, the connection ends now
                    await self._stream(reader, writer, response["id"], stream)
                await _close_frames(stream)
                return False  # a stream ends with its connection
            if not response.get("ok"):
                _log_refusal(peer, message, response)
            await self._send(writer, response, self.config["client-timeout"])
        return True

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request_id: Any,
        stream: Stream,
    ) -> None:
        """Send the stream's frames until the client hangs up or stops reading."""

        async def send_all() -> None:
            async for body in stream.frames:
                await self._send(
                    writer, {"id": request_id, "stream": body}, self.config["client-timeout"]
                )

        sender = asyncio.ensure_future(send_all())
        hangup = asyncio.ensure_future(_until_eof(reader))
        try:
            await asyncio.wait({sender, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, hangup):
                task.cancel()
            await asyncio.gather(sender, hangup, return_exceptions=True)

    async def _authenticate(self, writer: asyncio.StreamWriter, peer: Peer, message: dict) -> bool:
        """A TCP client's first request must be `hello` with the right token."""
        args = message.get("args") if isinstance(message.get("args"), dict) else {}
        request_id = message.get("id") if type(message.get("id")) is int else None
        if message.get("op") != "hello" or "token" not in args:
            await self._send_error(
                writer,
                ErrorCode.UNAUTHORIZED,
                "authenticate first: send 'hello' with the token",
                request_id,
            )
            return False
        if self.token is None or not token_matches(self.token, args.get("token")):
            log.warning(
                "refused a TCP client with a wrong token: %s",
                peer.address,
                extra={"event": "connection_unauthorized", "client": peer.address},
            )
            await asyncio.sleep(BAD_TOKEN_DELAY)
            await self._send_error(writer, ErrorCode.UNAUTHORIZED, "wrong token", request_id)
            return False
        peer.authenticated = True
        await self._send(writer, await self.answer(message), self.config["client-timeout"])
        return True

    async def answer(self, message: dict) -> dict:
        raw_id = message.get("id")
        valid_id = isinstance(raw_id, int) and not isinstance(raw_id, bool)
        request_id: Any = raw_id if valid_id else None
        try:
            request_id, op, args = parse_request(message)
            result = await self.handle(op, args)
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

    async def _send_error(
        self,
        writer: asyncio.StreamWriter,
        code: ErrorCode,
        message: str,
        request_id: Any = None,
    ) -> None:
        """The frame that ends a connection; the caller closes it."""
        try:
            await self._send(
                writer,
                error_response(request_id, ProtocolError(code, message), closing=True),
                REFUSAL_WRITE_TIMEOUT,
            )
        except (ConnectionError, asyncio.TimeoutError, OSError):
            pass

    async def _send(self, writer: asyncio.StreamWriter, response: dict, timeout: float) -> None:
        try:
            frame = pack_frame(response)
        except (OverflowError, ValueError, TypeError) as exc:
            # A result MessagePack cannot carry is a bug of the daemon's, and like
            # any other it is answered as one: the connection stays usable.
            log.error("the answer to request %r cannot be sent: %s", response.get("id"), exc)
            error = ProtocolError(ErrorCode.INTERNAL, f"internal error: unsendable answer: {exc}")
            frame = pack_frame(error_response(response.get("id"), error))
        writer.write(frame)
        # Only a client that is not reading fills the buffer. Below the mark drain()
        # returns at once, yet wait_for wrapped it in a new task and a timer for
        # every answer: about a tenth of the daemon's CPU for small requests.
        if writer.transport.get_write_buffer_size() > DRAIN_ABOVE:
            await asyncio.wait_for(writer.drain(), timeout)


async def _read_before(reader: asyncio.StreamReader, deadline: float) -> bytes:
    """The next bytes from the client, or TimeoutError at `deadline` (loop time).

    asyncio.timeout_at (3.11) only arms a timer; wait_for wraps every read in a
    new task, which at thousands of one-job requests a second was about a tenth
    of the daemon's CPU per request.
    """
    if _timeout_at is not None:
        async with _timeout_at(deadline):
            return await reader.read(READ_CHUNK)
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(reader.read(READ_CHUNK), deadline - loop.time())


_timeout_at = getattr(asyncio, "timeout_at", None)  # Python 3.11+


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Returns when the client closes its side; what it sends is discarded."""
    while await reader.read(READ_CHUNK):
        pass


async def _close_frames(stream: Stream) -> None:
    """Whatever the stream registered (a watcher) is unregistered, streamed or not."""
    aclose = getattr(stream.frames, "aclose", None)
    if aclose is not None:
        await aclose()


def _close(writer: asyncio.StreamWriter) -> None:
    """Close now. A plain close() would wait, forever, to flush what a client that
    does not read has left in the buffer; such a connection is aborted instead."""
    transport = writer.transport
    if transport.get_write_buffer_size():
        transport.abort()
    else:
        writer.close()


def _log_refusal(peer: Peer, message: Any, response: dict) -> None:
    """One line per request answered with an error; internal errors are logged in answer()."""
    error = response.get("error") or {}
    if error.get("code") == ErrorCode.INTERNAL.value:
        return
    op = message.get("op") if isinstance(message, dict) else None
    log.info(
        "request %s from %s refused: %s: %s",
        op if isinstance(op, str) else "?",
        peer.describe(),
        error.get("code"),
        error.get("message"),
        extra={
            "event": "request_refused",
            "op": op if isinstance(op, str) else None,
            "client": peer.describe(),
            "code": error.get("code"),
            "error": error.get("message"),
        },
    )

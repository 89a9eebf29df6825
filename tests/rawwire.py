"""Talking to a daemon below the Client: raw bytes, single frames, hostile clients."""

from __future__ import annotations

import socket
import struct
import time

import msgpack

from protocol.framing import FrameDecoder, pack_frame


def connect(path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    return sock


def frame(message) -> bytes:
    return pack_frame(message)


def raw_frame(body: bytes, length: int | None = None) -> bytes:
    return struct.pack(">I", len(body) if length is None else length) + body


def read_responses(sock: socket.socket, timeout: float = 10.0) -> tuple[list[dict], bool]:
    """Every frame the daemon sends until it closes (True) or `timeout` passes (False)."""
    decoder = FrameDecoder(64 * 1024 * 1024)
    responses: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return responses, True
        if not data:
            return responses, True
        responses += decoder.feed(data)
    return responses, False


def request(sock: socket.socket, op: str, args: dict | None = None, request_id: int = 1) -> dict:
    """Send one well-formed request and read exactly one answer."""
    sock.sendall(frame({"id": request_id, "op": op, "args": args or {}}))
    decoder = FrameDecoder(64 * 1024 * 1024)
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the daemon")
        messages = decoder.feed(data)
        if messages:
            return messages[0]


def packb(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)

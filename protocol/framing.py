"""Length-prefixed msgpack frames.

A frame is a 4-byte unsigned big-endian body length followed by the body, one
msgpack map. The length is checked against the limit before any of the body is
buffered, so a hostile length prefix costs the reader nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import msgpack

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 8 * 1024 * 1024


class FrameError(Exception):
    """The byte stream is not a valid sequence of frames; the connection is unusable.

    `messages` holds the whole frames decoded before the bad one, so a peer that
    pipelined requests still gets answers to those before the connection closes.
    """

    messages: Sequence[dict] = ()


class FrameTooLarge(FrameError):
    """A length prefix beyond the limit."""


def pack_frame(message: dict) -> bytes:
    body = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def unpack_body(body: bytes) -> dict:
    try:
        message = msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True)
    except msgpack.StackError:
        raise FrameError("body is nested too deeply") from None
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        reason = str(exc) or type(exc).__name__
        raise FrameError(f"body is not valid msgpack: {reason}") from None
    if not isinstance(message, dict):
        raise FrameError(f"body must be a msgpack map, got {type(message).__name__}")
    return message


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole messages back."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES):
        self.max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict]:
        self._buffer += data
        messages: list[dict] = []
        try:
            while len(self._buffer) >= HEADER.size:
                (length,) = HEADER.unpack_from(self._buffer)
                if length > self.max_frame:
                    raise FrameTooLarge(
                        f"frame of {length} bytes exceeds the limit of {self.max_frame}"
                    )
                end = HEADER.size + length
                if len(self._buffer) < end:
                    break
                body = bytes(self._buffer[HEADER.size : end])
                del self._buffer[:end]
                messages.append(unpack_body(body))
        except FrameError as exc:
            exc.messages = messages
            raise
        return messages

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)

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
    """The map in `body`, or FrameError with a reason in the protocol's terms."""
    # Only a bin value can be a bin key, and every bin starts with one of these
    # bytes (bin 8, 16, 32): nearly every body lacks all three and skips the
    # check of each key.
    hook = _str_keys_only if b"\xc4" in body or b"\xc5" in body or b"\xc6" in body else None
    try:
        message = msgpack.unpackb(
            body, raw=False, strict_map_key=True, use_list=True, object_pairs_hook=hook
        )
    except Exception:  # msgpack raises many unrelated types for bad input
        raise FrameError(_why_not_decodable(body)) from None
    if not isinstance(message, dict):
        raise FrameError(f"body must be a msgpack map, not {wire_type(message)}")
    return message


# Deepest nesting of maps and arrays the daemon reads, the body's map counting as
# the first level: the stack of msgpack's C decoder, so a hostile body costs no
# recursion.
MAX_NESTING = 1024


class _KeyNotStr(Exception):
    def __init__(self, key: object):
        super().__init__(f"body has a map key of type {wire_type(key)}; map keys must be str")


def _str_keys_only(pairs: list[tuple]) -> dict:
    for key, _ in pairs:
        if type(key) is not str:
            raise _KeyNotStr(key)
    return dict(pairs)


def _why_not_decodable(body: bytes) -> str:
    """Why unpack_body refused `body`, in words of the protocol, never the library's.

    Decodes it again, slowly, only to classify the first fault; limits sized to
    the body keep a claimed length from allocating more than the body could hold.
    """
    if not body:
        return "body is empty"
    unpacker = msgpack.Unpacker(
        raw=False,
        strict_map_key=False,
        use_list=True,
        object_pairs_hook=_str_keys_only,
        max_buffer_size=max(len(body), 1),
        max_map_len=len(body),
    )
    unpacker.feed(body)
    try:
        unpacker.unpack()
    except _KeyNotStr as exc:
        return str(exc)
    except msgpack.StackError:
        return f"body is nested too deeply (more than {MAX_NESTING} levels of maps and arrays)"
    except msgpack.OutOfData:
        return "body ends in the middle of a msgpack value"
    except UnicodeDecodeError:
        return "body has a str that is not valid UTF-8 (raw bytes go in a bin)"
    except Exception:
        return "body is not valid msgpack"
    if unpacker.tell() < len(body):
        return "body has bytes after its msgpack value (one frame carries one map)"
    return "body is not valid msgpack"


def wire_type(value: object) -> str:
    """The msgpack type name of a decoded value, as PROTOCOL.md uses them."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, bytes):
        return "bin"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "map"
    return "ext"  # ExtType and Timestamp, the only other things msgpack decodes to


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

"""The queuectl wire protocol: framing, message schemas and error codes.

This package is shared by the daemon and every client. It is pure: it opens no
sockets and holds no policy beyond the shape of the messages.
"""

from protocol.errors import ErrorCode, ProtocolError
from protocol.framing import MAX_FRAME_BYTES, FrameDecoder, FrameError, pack_frame

PROTOCOL_VERSION = 1

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_FRAME_BYTES",
    "ErrorCode",
    "FrameDecoder",
    "FrameError",
    "ProtocolError",
    "pack_frame",
]

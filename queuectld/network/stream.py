"""A result that turns its connection into a stream of frames (the `watch` op).

A handler returns a Stream instead of a plain result: the server sends the
answer, then every frame the stream yields, each as `{"id": ..., "stream":
body}`, until the client closes the connection (anything it sends meanwhile is
read and discarded) or stops reading for `client-timeout`. The stream's
generator is closed in every case, so what it registered is unregistered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Stream:
    result: Any  # the answer to the request that opened the stream
    frames: AsyncIterator[dict]  # the bodies of the stream frames that follow

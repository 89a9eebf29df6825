"""One handler per protocol op, grouped by what they act on.

Each module exports HANDLERS, a map of op name to `async def handler(ctx,
args)`. Handlers take validated args (see protocol/messages.py) and raise
ProtocolError for anything the client should hear about; the server turns
other exceptions into an `internal` error without dropping the connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from protocol.errors import ErrorCode, ProtocolError
from queuectld.network.handlers import (
    dlq,
    fleet,
    jobs,
    monitoring,
    queues,
    schedules,
    session,
    settings,
)
from queuectld.network.handlers.context import HandlerContext
from queuectld.store import StoreError, StoreUnavailable

Handler = Callable[["HandlerContext", dict], Awaitable[Any]]

# One module per section of PROTOCOL.md 8, named like it (tests/test_ops.py checks).
SECTIONS = {
    "session": session.HANDLERS,
    "jobs": jobs.HANDLERS,
    "dlq": dlq.HANDLERS,
    "fleet": fleet.HANDLERS,
    "queues": queues.HANDLERS,
    "schedules": schedules.HANDLERS,
    "settings": settings.HANDLERS,
    "monitoring": monitoring.HANDLERS,
}
TABLE: dict[str, Handler] = {op: h for handlers in SECTIONS.values() for op, h in handlers.items()}


class Handlers:
    """Binds the op table to the daemon's parts and maps store errors to protocol errors."""

    def __init__(self, ctx: HandlerContext):
        self.ctx = ctx

    async def handle(self, op: str, args: dict) -> Any:
        try:
            return await TABLE[op](self.ctx, args)
        except StoreError as exc:
            raise ProtocolError(ErrorCode(exc.code), exc.message) from None
        except StoreUnavailable as exc:
            raise ProtocolError(ErrorCode.UNAVAILABLE, str(exc)) from None

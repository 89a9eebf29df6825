"""Ops about the connection and the daemon itself: hello, shutdown."""

from __future__ import annotations

import logging
import os

from protocol import PROTOCOL_VERSION
from queuectld import __version__
from queuectld.network.handlers.context import HandlerContext

log = logging.getLogger("queuectld.session")


async def hello(ctx: HandlerContext, args: dict) -> dict:
    return {
        "protocol": PROTOCOL_VERSION,
        "server": f"queuectld {__version__}",
        "pid": os.getpid(),
    }


async def shutdown(ctx: HandlerContext, args: dict) -> dict:
    log.info(
        "shutdown requested by a client%s",
        " (now)" if args.get("now") else "",
        extra={"event": "shutdown_requested", "now": bool(args.get("now"))},
    )
    ctx.request_stop(now=bool(args.get("now")))
    return {"stopping": True, "pid": os.getpid()}


HANDLERS = {"hello": hello, "shutdown": shutdown}

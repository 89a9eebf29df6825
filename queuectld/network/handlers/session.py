"""Ops about the connection and the daemon itself: hello, shutdown."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from protocol import PROTOCOL_VERSION
from queuectld import __version__

if TYPE_CHECKING:
    from queuectld.daemon import Daemon

log = logging.getLogger("queuectld.session")


async def hello(daemon: Daemon, args: dict) -> dict:
    return {
        "protocol": PROTOCOL_VERSION,
        "server": f"queuectld {__version__}",
        "pid": os.getpid(),
    }


async def shutdown(daemon: Daemon, args: dict) -> dict:
    log.info(
        "shutdown requested by a client%s",
        " (now)" if args.get("now") else "",
        extra={"event": "shutdown_requested", "now": bool(args.get("now"))},
    )
    daemon.request_stop(now=bool(args.get("now")))
    return {"stopping": True, "pid": os.getpid()}


HANDLERS = {"hello": hello, "shutdown": shutdown}

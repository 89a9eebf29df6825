"""Ops for watching the queue (PROTOCOL.md 8.8): stats from the runs table, and
job ids by prefix for shell completion."""

from __future__ import annotations

import time

from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import JOB_STATES
from queuectld.network.handlers.context import HandlerContext
from queuectld.store import Store


async def stats(ctx: HandlerContext, args: dict) -> dict:
    return await ctx.runner.call(Store.run_stats, time.time(), args.get("queue"))


DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


async def complete_ids(ctx: HandlerContext, args: dict) -> dict:
    states = args.get("states") or None
    for state in states or ():
        if state not in JOB_STATES:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"unknown state {state!r} (states: {', '.join(JOB_STATES)})"
            )
    limit = min(args.get("limit") or DEFAULT_LIMIT, MAX_LIMIT)
    ids = await ctx.runner.call(Store.job_ids_with_prefix, args.get("prefix") or "", states, limit)
    return {"ids": ids}


HANDLERS = {
    "stats": stats,
    "complete_ids": complete_ids,
}

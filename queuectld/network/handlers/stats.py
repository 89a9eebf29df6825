"""The stats op: throughput, success rate and timing per queue, from the runs table."""

from __future__ import annotations

import time

from queuectld.network.handlers.context import HandlerContext
from queuectld.store import Store


async def stats(ctx: HandlerContext, args: dict) -> dict:
    return await ctx.runner.call(Store.run_stats, time.time(), args.get("queue"))


HANDLERS = {"stats": stats}

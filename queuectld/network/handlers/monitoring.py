"""Ops for watching the queue (PROTOCOL.md 8.8): stats from the runs table, job
ids by prefix for shell completion, and the stream of job changes and counts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import JOB_STATES
from protocol.times import to_iso
from queuectld.engine.events import WATCH_BACKLOG, Watcher
from queuectld.network.handlers.context import HandlerContext
from queuectld.network.handlers.fleet import status
from queuectld.network.stream import Stream
from queuectld.store import Store


async def stats(ctx: HandlerContext, args: dict) -> dict:
    return await ctx.runner.call(
        Store.run_stats, time.time(), args.get("queue"), bool(args.get("per_minute"))
    )


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


# Each watcher holds a connection, a backlog and a snapshot every interval; a
# dashboard process needs one, so this is far above any real use.
MAX_WATCHERS = 64
DEFAULT_INTERVAL = 1.0
# Changes are gathered this long before a frame goes out: a busy queue costs a
# watcher at most this many frames a second, not one per job.
GATHER_SECONDS = 0.05


async def watch(ctx: HandlerContext, args: dict) -> Stream:
    if len(ctx.events.watchers) >= MAX_WATCHERS:
        raise ProtocolError(
            ErrorCode.UNAVAILABLE,
            f"watch: {MAX_WATCHERS} clients are watching already; try again later",
        )
    interval = float(args.get("interval") or DEFAULT_INTERVAL)
    result = {"watching": True, "interval": interval, "backlog": WATCH_BACKLOG}
    return Stream(result, _frames(ctx, interval))


async def _frames(ctx: HandlerContext, interval: float) -> AsyncIterator[dict]:
    watcher = Watcher()
    # Registered before the first snapshot is read, so no change after it is missed.
    ctx.events.watchers.add(watcher)
    loop = asyncio.get_running_loop()
    try:
        due = loop.time()
        while True:
            if loop.time() >= due:
                yield await snapshot(ctx)
                due = loop.time() + interval
            try:
                await asyncio.wait_for(watcher.ready.wait(), max(0.0, due - loop.time()))
            except asyncio.TimeoutError:
                continue
            await asyncio.sleep(GATHER_SECONDS)
            jobs, dropped = watcher.take()
            yield {"type": "jobs", "jobs": jobs, "dropped": dropped}
    finally:
        ctx.events.watchers.discard(watcher)


async def snapshot(ctx: HandlerContext) -> dict:
    """Counts by state, the fleet and every queue: what `status` and `queue_list`
    say, read from counters (no scan of the jobs)."""
    now = time.time()
    current = await status(ctx, {})
    queues = await ctx.runner.call(Store.queue_overview, now)
    return {
        "type": "snapshot",
        "at": to_iso(now),
        "jobs": current["jobs"],
        "workers": current["workers"],
        "queues": queues,
    }


HANDLERS = {
    "stats": stats,
    "complete_ids": complete_ids,
    "watch": watch,
}

"""Ops on captured output: logs."""

from __future__ import annotations

import asyncio
import time

from queuectld.network.handlers.context import HandlerContext
from queuectld.store import Store

LOG_CHUNK = 256 * 1024


async def logs(ctx: HandlerContext, args: dict) -> dict:
    job_id = args["id"]
    offset = args.get("offset", 0)
    limit = min(args.get("limit") or LOG_CHUNK, LOG_CHUNK)
    deadline = time.monotonic() + min(args.get("wait") or 0, 30)
    settle_until = time.monotonic() + 1.0
    while True:
        _, run, state, path = await ctx.runner.call(Store.job_log_path, job_id, args.get("run"))
        active = ctx.dispatcher.active.get(job_id)
        if state == "processing" and active is None and time.monotonic() < settle_until:
            # The run ended (or was just claimed) while we read the store: its final
            # log path is still being written. Answering now would tell a follower
            # the run is over before it has read the last of the output.
            await asyncio.sleep(0.01)
            continue
        running = active is not None and active.job.run == run
        if running:
            path = active.log_path
        data = _read_chunk(path, offset, limit)
        if data or not running or time.monotonic() >= deadline:
            return {
                "run": run,
                "state": state,
                "running": running,
                "data": data,
                "offset": offset + len(data),
            }
        # Following a live job: its log grows in a file only the worker writes.
        await asyncio.sleep(0.2)


def _read_chunk(path: str | None, offset: int, limit: int) -> bytes:
    if not path:
        return b""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(limit)
    except FileNotFoundError:
        return b""


HANDLERS = {"logs": logs}

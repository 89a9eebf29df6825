"""Ops that delete jobs for good: dlq_purge."""

from __future__ import annotations

import asyncio

from protocol.errors import ErrorCode, ProtocolError
from queuectld.engine.retention import remove_files
from queuectld.network.handlers.context import HandlerContext
from queuectld.store import Store


async def dlq_purge(ctx: HandlerContext, args: dict) -> dict:
    job_id = args.get("id")
    if (job_id is None) == (not args.get("all")):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "dlq_purge: give either 'id' or 'all'")
    ids, logs = await ctx.runner.call(Store.purge_dead, job_id)
    if logs:
        await asyncio.get_running_loop().run_in_executor(None, remove_files, logs)
    return {"ids": ids}


HANDLERS = {"dlq_purge": dlq_purge}

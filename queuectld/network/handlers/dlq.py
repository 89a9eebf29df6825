"""Ops on the dead letter queue (PROTOCOL.md 8.3): dlq_list, dlq_retry, dlq_purge."""

from __future__ import annotations

import asyncio
import logging
import time

from protocol.errors import ErrorCode, ProtocolError
from protocol.times import parse_iso
from queuectld.engine.retention import remove_files
from queuectld.network.handlers.context import HandlerContext
from queuectld.network.handlers.jobs import list_jobs
from queuectld.store import Store

log = logging.getLogger("queuectld.dlq")


async def dlq_list(ctx: HandlerContext, args: dict) -> dict:
    return await list_jobs(ctx, {**args, "state": "dead"})


async def dlq_retry(ctx: HandlerContext, args: dict) -> dict:
    job_id = args.get("id")
    if (job_id is None) == (not args.get("all")):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "dlq_retry: give either 'id' or 'all'")
    if job_id is not None and (args.get("queue") is not None or args.get("since") is not None):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "dlq_retry: 'queue' and 'since' go with 'all'")
    since = None
    if args.get("since") is not None:
        try:
            since = parse_iso(args["since"])
        except ValueError:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"dlq_retry: since {args['since']!r} is not an ISO 8601 time"
            ) from None
    ids = await ctx.runner.call(
        Store.retry_dead_jobs, job_id, time.time(), args.get("queue"), since
    )
    for retried in ids:
        ctx.events.job_changed(retried, "pending", args.get("queue"))
    ctx.dispatcher.kick()
    ctx.telemetry.changed()
    log.info(
        "requeued %d job(s) from the DLQ",
        len(ids),
        extra={"event": "dlq_retry", "count": len(ids), "job": job_id},
    )
    return {"ids": ids}


async def dlq_purge(ctx: HandlerContext, args: dict) -> dict:
    job_id = args.get("id")
    if (job_id is None) == (not args.get("all")):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "dlq_purge: give either 'id' or 'all'")
    ids, logs = await ctx.runner.call(Store.purge_dead, job_id)
    if logs:
        await asyncio.get_running_loop().run_in_executor(None, remove_files, logs)
    return {"ids": ids}


HANDLERS = {
    "dlq_list": dlq_list,
    "dlq_retry": dlq_retry,
    "dlq_purge": dlq_purge,
}

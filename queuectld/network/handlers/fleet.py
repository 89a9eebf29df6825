"""Ops on the worker fleet and the overall picture (PROTOCOL.md 8.4): status,
worker_scale, worker_stop, worker_drain, worker_resume."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import JOB_STATES
from protocol.times import to_iso
from queuectld import __version__
from queuectld.config import SETTINGS
from queuectld.network.handlers.context import HandlerContext
from queuectld.network.handlers.settings import (
    check_fleet_size,
    refuse_while_stopping,
    set_config,
)
from queuectld.network.handlers.status_detail import extend_status
from queuectld.network.records import daemon_records
from queuectld.store import Store

log = logging.getLogger("queuectld.fleet")


DRAINING_KEY = "draining"  # kept with the settings, so a restarted daemon stays drained
DRAIN_CHECK_SECONDS = 0.1


async def set_draining(ctx: HandlerContext, draining: bool) -> None:
    await ctx.dispatcher.change_rules(
        lambda: ctx.runner.call(Store.set_config, DRAINING_KEY, "1" if draining else "0"),
        then=lambda: ctx.dispatcher.set_draining(draining),
        kick=not draining,
    )


async def worker_drain(ctx: HandlerContext, args: dict) -> dict:
    if "timeout" in args and not args.get("wait"):
        # A limit on a wait that does not happen would be silently dropped.
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "worker_drain: 'timeout' is only allowed with 'wait': true"
        )
    await set_draining(ctx, True)
    supervisor = ctx.supervisor
    if args.get("wait"):
        timeout = args.get("timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        while supervisor.busy_workers():
            if deadline is not None and time.monotonic() >= deadline:
                break
            await asyncio.sleep(DRAIN_CHECK_SECONDS)
    return {"draining": True, "running": len(supervisor.busy_workers())}


async def worker_resume(ctx: HandlerContext, args: dict) -> dict:
    await set_draining(ctx, False)
    return {"draining": False}


async def worker_scale(ctx: HandlerContext, args: dict) -> dict:
    count = args.get("count")
    refuse_while_stopping(ctx)
    if count is None:
        count = await _size_to_start(ctx)
    check_fleet_size(ctx, count)
    if ctx.dispatcher.draining:
        await set_draining(ctx, False)  # `worker start` also ends a drain
    await ctx.dispatcher.change_rules(
        lambda: set_config(ctx, "workers", count),
        then=lambda: ctx.supervisor.scale(count),
        kick=False,  # new workers ask for jobs once they are ready
    )
    return {"target": count}


async def _size_to_start(ctx: HandlerContext) -> int:
    """`worker start` without a count never shrinks the fleet: it keeps the current
    size, and starts a stopped fleet at its stored size, or at the default."""
    if ctx.supervisor.target > 0:
        return ctx.supervisor.target
    stored = (await ctx.runner.call(Store.config_items)).get("workers")
    try:
        count = SETTINGS["workers"].parse(stored) if stored is not None else 0
    except ValueError:
        count = 0
    return min(count, ctx.supervisor.max_workers) or SETTINGS["workers"].default


async def worker_stop(ctx: HandlerContext, args: dict) -> dict:
    supervisor = ctx.supervisor
    busy = len(supervisor.busy_workers())
    log.info(
        "stopping all workers%s",
        " now" if args.get("now") else "",
        extra={"event": "workers_stopping", "now": bool(args.get("now")), "running": busy},
    )
    await ctx.dispatcher.change_rules(
        lambda: set_config(ctx, "workers", 0), then=lambda: supervisor.scale(0), kick=False
    )
    if args.get("now"):
        for worker in supervisor.busy_workers():
            ctx.dispatcher.interrupt_worker(worker)
    if args.get("wait", True):
        await supervisor.wait_until_empty()
    return {"target": 0, "was_busy": busy, "alive": len(supervisor.workers)}


async def status(ctx: HandlerContext, args: dict) -> dict:
    # One store batch for both reads.
    counts, daemons = await asyncio.gather(
        ctx.runner.call(Store.count_by_state), ctx.runner.call(Store.daemons)
    )
    supervisor = ctx.supervisor
    workers = supervisor.workers.values()
    busy = sum(1 for w in workers if w.busy)
    result = {
        "jobs": {state: counts.get(state, 0) for state in JOB_STATES},
        "workers": {
            "target": supervisor.target,
            "alive": len(supervisor.workers),
            "busy": busy,
            "idle": sum(1 for w in workers if w.idle),
            "draining": ctx.dispatcher.draining,
            "max": supervisor.max_workers,
            "halted": supervisor.halted,
            "running": [
                {
                    "worker": w.id,
                    "pid": w.pid,
                    "job": w.run.job.id,
                    "job_pid": w.run.pid,
                    "started_at": to_iso(w.run.started),
                }
                for w in workers
                if w.run is not None
            ],
        },
        "daemon": {
            "id": ctx.daemon_id,
            "store": ctx.store,
            "pid": os.getpid(),
            "version": __version__,
            "started_at": to_iso(ctx.started_at),
            "uptime": round(time.time() - ctx.started_at, 3),
            "home": str(ctx.home),
            "stopping": ctx.is_stopping(),
        },
        "daemons": daemon_records(daemons, ctx.daemon_id, supervisor.figures()),
    }
    return await extend_status(ctx, result, args)


HANDLERS = {
    "status": status,
    "worker_scale": worker_scale,
    "worker_stop": worker_stop,
    "worker_drain": worker_drain,
    "worker_resume": worker_resume,
}

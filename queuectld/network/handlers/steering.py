"""Ops that steer jobs after they were enqueued: worker_drain, worker_resume, retry,
edit, purge."""

from __future__ import annotations

import asyncio
import os
import time

from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import TERMINAL_STATES
from protocol.times import parse_iso
from queuectld.network.handlers.context import HandlerContext
from queuectld.store import Store

DRAINING_KEY = "draining"  # kept with the settings, so a restarted daemon stays drained
PURGE_CHUNK = 5000
DRAIN_CHECK_SECONDS = 0.1


async def set_draining(ctx: HandlerContext, draining: bool) -> None:
    await ctx.dispatcher.change_rules(
        lambda: ctx.runner.call(Store.set_config, DRAINING_KEY, "1" if draining else "0"),
        then=lambda: ctx.dispatcher.set_draining(draining),
        kick=not draining,
    )


async def worker_drain(ctx: HandlerContext, args: dict) -> dict:
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


async def retry(ctx: HandlerContext, args: dict) -> dict:
    record = await ctx.runner.call(Store.retry_job, args["id"], time.time())
    ctx.dispatcher.kick()
    return record


async def edit(ctx: HandlerContext, args: dict) -> dict:
    now = time.time()
    changes = {key: args[key] for key in ("command", "priority", "queue") if key in args}
    if "command" in changes and len(changes["command"].encode()) > ctx.config["max-command-bytes"]:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"edit: command exceeds max-command-bytes {ctx.config['max-command-bytes']}",
        )
    if "run_at" in args and "delay" in args:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "edit: give 'run_at' or 'delay', not both")
    if "run_at" in args:
        try:
            changes["run_at"] = parse_iso(args["run_at"])
        except ValueError:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"edit: run_at {args['run_at']!r} is not an ISO 8601 time"
            ) from None
    elif "delay" in args:
        changes["run_at"] = now + float(args["delay"])
    if not changes:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "edit: give at least one of command, priority, run_at, queue"
        )
    # It may be held ahead (not yet running), be due sooner, or move to a queue with room.
    return await ctx.dispatcher.change_rules(
        lambda: ctx.runner.call(Store.edit_job, args["id"], changes, now), job_id=args["id"]
    )


async def purge(ctx: HandlerContext, args: dict) -> dict:
    state = args["state"]
    if state not in TERMINAL_STATES:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"purge: state must be one of {', '.join(TERMINAL_STATES)}, not {state!r}",
        )
    before = time.time() - args["older_than"]
    total = 0
    loop = asyncio.get_running_loop()
    while True:
        # In chunks, each its own store call, so other requests are served in between.
        count, logs = await ctx.runner.call(
            Store.purge_jobs, state, before, args.get("queue"), PURGE_CHUNK
        )
        total += count
        if logs:
            await loop.run_in_executor(None, _remove_files, logs)
        if count < PURGE_CHUNK:
            return {"purged": total}


def _remove_files(paths: list[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


HANDLERS = {
    "worker_drain": worker_drain,
    "worker_resume": worker_resume,
    "retry": retry,
    "edit": edit,
    "purge": purge,
}

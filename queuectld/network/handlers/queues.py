"""Ops on named queues: queue_set, queue_list, queue_pause, queue_resume."""

from __future__ import annotations

import time

from protocol.errors import ErrorCode, ProtocolError
from queuectld.config import check_hook
from queuectld.network.handlers.context import HandlerContext
from queuectld.network.limits import check_count
from queuectld.store import Store


def _set_queue(ctx: HandlerContext, op: str, name: str, changes: dict):
    """Every op that names a queue may create it: each is counted against max-queues,
    in the store call that writes it, so concurrent ones cannot pass the limit."""
    maximum = ctx.config["max-queues"]

    def write(store: Store) -> dict:
        known = store.queue_settings()
        if name not in known:
            check_count(op, len(known), maximum, "queues with settings", "max-queues")
        return store.set_queue(name, changes)

    return ctx.runner.call(write)


async def queue_set(ctx: HandlerContext, args: dict) -> dict:
    changes = {key: args[key] for key in ("concurrency", "priority") if key in args}
    if "on_finish" in args:
        try:
            hook = check_hook(args["on_finish"].strip())
        except ValueError as exc:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"queue_set: on_finish {exc}") from None
        changes["on_finish"] = hook or None  # "" removes the hook
    settings = await ctx.dispatcher.change_rules(
        lambda: _set_queue(ctx, "queue_set", args["name"], changes)
    )
    if "on_finish" in changes:
        ctx.hooks.set_queue_hook(args["name"], changes["on_finish"])
    return {"name": args["name"], **settings}


async def queue_list(ctx: HandlerContext, args: dict) -> dict:
    return {"queues": await ctx.runner.call(Store.queue_overview, time.time())}


async def queue_pause(ctx: HandlerContext, args: dict) -> dict:
    settings = await ctx.dispatcher.change_rules(
        lambda: _set_queue(ctx, "queue_pause", args["name"], {"paused": True}), kick=False
    )
    return {"name": args["name"], **settings}


async def queue_resume(ctx: HandlerContext, args: dict) -> dict:
    settings = await _set_queue(ctx, "queue_resume", args["name"], {"paused": False})
    ctx.dispatcher.kick()
    return {"name": args["name"], **settings}


HANDLERS = {
    "queue_set": queue_set,
    "queue_list": queue_list,
    "queue_pause": queue_pause,
    "queue_resume": queue_resume,
}

"""Ops on named queues: queue_set, queue_list, queue_pause, queue_resume."""

from __future__ import annotations

import time

from queuectld.network.handlers.context import HandlerContext
from queuectld.store import Store


async def queue_set(ctx: HandlerContext, args: dict) -> dict:
    changes = {key: args[key] for key in ("concurrency", "priority") if key in args}
    if "on_finish" in args:
        changes["on_finish"] = args["on_finish"].strip() or None  # "" removes the hook
    settings = await ctx.dispatcher.change_rules(
        lambda: ctx.runner.call(Store.set_queue, args["name"], changes)
    )
    if "on_finish" in changes:
        ctx.hooks.set_queue_hook(args["name"], changes["on_finish"])
    return {"name": args["name"], **settings}


async def queue_list(ctx: HandlerContext, args: dict) -> dict:
    return {"queues": await ctx.runner.call(Store.queue_overview, time.time())}


async def queue_pause(ctx: HandlerContext, args: dict) -> dict:
    settings = await ctx.dispatcher.change_rules(
        lambda: ctx.runner.call(Store.set_queue, args["name"], {"paused": True}), kick=False
    )
    return {"name": args["name"], **settings}


async def queue_resume(ctx: HandlerContext, args: dict) -> dict:
    settings = await ctx.runner.call(Store.set_queue, args["name"], {"paused": False})
    ctx.dispatcher.kick()
    return {"name": args["name"], **settings}


HANDLERS = {
    "queue_set": queue_set,
    "queue_list": queue_list,
    "queue_pause": queue_pause,
    "queue_resume": queue_resume,
}

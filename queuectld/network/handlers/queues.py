"""Ops on named queues: queue_set, queue_list, queue_pause, queue_resume."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from queuectld.store import Store

if TYPE_CHECKING:
    from queuectld.daemon import Daemon


async def queue_set(daemon: Daemon, args: dict) -> dict:
    changes = {key: args[key] for key in ("concurrency", "priority") if key in args}
    if "on_finish" in args:
        changes["on_finish"] = args["on_finish"].strip() or None  # "" removes the hook
    daemon.dispatcher.release_ahead()  # claimed under the old limit
    settings = await daemon.runner.call(Store.set_queue, args["name"], changes)
    if "on_finish" in changes:
        daemon.hooks.set_queue_hook(args["name"], changes["on_finish"])
    daemon.dispatcher.kick()  # a higher limit may let jobs start now
    return {"name": args["name"], **settings}


async def queue_list(daemon: Daemon, args: dict) -> dict:
    return {"queues": await daemon.runner.call(Store.queue_overview, time.time())}


async def queue_pause(daemon: Daemon, args: dict) -> dict:
    daemon.dispatcher.release_ahead()  # none of the queue's held jobs may start now
    settings = await daemon.runner.call(Store.set_queue, args["name"], {"paused": True})
    return {"name": args["name"], **settings}


async def queue_resume(daemon: Daemon, args: dict) -> dict:
    settings = await daemon.runner.call(Store.set_queue, args["name"], {"paused": False})
    daemon.dispatcher.kick()
    return {"name": args["name"], **settings}


HANDLERS = {
    "queue_set": queue_set,
    "queue_list": queue_list,
    "queue_pause": queue_pause,
    "queue_resume": queue_resume,
}

"""Ops on the worker fleet and the overall picture: worker_scale, worker_stop, status."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from protocol.messages import JOB_STATES
from protocol.times import to_iso
from queuectld import __version__
from queuectld.network.handlers.monitor import extend_status
from queuectld.network.handlers.settings import refuse_while_stopping, set_config
from queuectld.network.handlers.steering import set_draining
from queuectld.store import Store

if TYPE_CHECKING:
    from queuectld.daemon import Daemon

log = logging.getLogger("queuectld.fleet")


async def worker_scale(daemon: Daemon, args: dict) -> dict:
    count = args["count"]
    refuse_while_stopping(daemon)
    if daemon.dispatcher.draining:
        await set_draining(daemon, False)  # `worker start` also ends a drain
    if count < daemon.supervisor.target:
        daemon.dispatcher.release_ahead()  # held for workers that are going away
    await set_config(daemon, "workers", count)
    daemon.supervisor.scale(count)
    return {"target": count}


async def worker_stop(daemon: Daemon, args: dict) -> dict:
    supervisor = daemon.supervisor
    busy = len(supervisor.busy_workers())
    log.info(
        "stopping all workers%s",
        " now" if args.get("now") else "",
        extra={"event": "workers_stopping", "now": bool(args.get("now")), "running": busy},
    )
    daemon.dispatcher.release_ahead()
    await set_config(daemon, "workers", 0)
    supervisor.scale(0)
    if args.get("now"):
        for worker in supervisor.busy_workers():
            daemon.dispatcher.interrupt_worker(worker)
    if args.get("wait", True):
        await supervisor.wait_until_empty()
    return {"target": 0, "was_busy": busy, "alive": len(supervisor.workers)}


async def status(daemon: Daemon, args: dict) -> dict:
    counts = await daemon.runner.call(Store.count_by_state)
    supervisor = daemon.supervisor
    workers = supervisor.workers.values()
    busy = sum(1 for w in workers if w.busy)
    result = {
        "jobs": {state: counts.get(state, 0) for state in JOB_STATES},
        "workers": {
            "target": supervisor.target,
            "alive": len(supervisor.workers),
            "busy": busy,
            "idle": sum(1 for w in workers if w.idle),
            "draining": daemon.dispatcher.draining,
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
            "pid": os.getpid(),
            "version": __version__,
            "started_at": to_iso(daemon.started_at),
            "uptime": round(time.time() - daemon.started_at, 3),
            "home": str(daemon.home),
            "stopping": daemon.stopping,
        },
    }
    return await extend_status(daemon, result, args)


HANDLERS = {"worker_scale": worker_scale, "worker_stop": worker_stop, "status": status}

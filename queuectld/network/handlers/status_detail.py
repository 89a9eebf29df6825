"""What `status` adds for people watching: where the daemon listens, and on request
the whole fleet with each job's command, CPU and memory, and the next jobs due.

The extras cost a store query and a walk of /proc, so they come only when asked
for (`processes`, `next`); plain `status` stays as cheap as it was.
"""

from __future__ import annotations

import time

from protocol.times import to_iso
from queuectld.fleet.usage import tree_usage
from queuectld.network.handlers.context import HandlerContext
from queuectld.network.records import waiting_record
from queuectld.store import Store

MAX_NEXT = 100


async def extend_status(ctx: HandlerContext, result: dict, args: dict) -> dict:
    info = result["daemon"]
    info.update(ctx.listening())
    if args.get("processes"):
        result["workers"]["list"] = fleet_details(ctx)
    if args.get("next"):
        jobs = await ctx.runner.call(Store.next_waiting_jobs, min(args["next"], MAX_NEXT))
        result["next"] = [waiting_record(job) for job in jobs]
    return result


def fleet_details(ctx: HandlerContext) -> list[dict]:
    now = time.time()
    rows = []
    for worker in sorted(ctx.supervisor.workers.values(), key=lambda w: w.id):
        if worker.retiring:
            state = "retiring"
        elif worker.busy:
            state = "busy"
        elif worker.ready:
            state = "idle"
        else:
            state = "starting"
        row = {"worker": worker.id, "pid": worker.pid, "state": state, "job": None}
        run = worker.run
        if run is not None:
            row["job"] = {
                "id": run.job.id,
                "command": run.job.command,
                "queue": run.job.queue,
                "attempt": run.job.attempts + 1,
                "max_attempts": run.job.max_retries + 1,
                "pid": run.pid,
                "started_at": to_iso(run.started),
                "run_seconds": round(now - run.started, 3),
                "usage": tree_usage(run.pid),
            }
        rows.append(row)
    return rows

"""Ops on recurring jobs: schedule_add, schedule_list, schedule_remove,
schedule_pause, schedule_resume."""

from __future__ import annotations

import os
import time

from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import validate_job_spec
from protocol.times import to_iso
from queuectld.engine.schedules import (
    CATCH_UP_POLICIES,
    DEFAULT_CATCH_UP,
    TEMPLATE_FORBIDDEN,
    ScheduleError,
    check_cron,
    check_name,
    check_tz,
    fire_now,
    next_fire,
)
from queuectld.network.handlers.context import HandlerContext
from queuectld.network.limits import (
    check_command,
    check_count,
    job_environment,
    submitter_environment,
)
from queuectld.network.peers import CURRENT_PEER
from queuectld.network.runas import run_identity
from queuectld.store import Store
from queuectld.store.base import Schedule


async def schedule_add(ctx: HandlerContext, args: dict) -> dict:
    catch_up = args.get("catch_up") or DEFAULT_CATCH_UP
    if catch_up not in CATCH_UP_POLICIES:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"schedule_add: catch_up must be one of {', '.join(CATCH_UP_POLICIES)}, "
            f"not {catch_up!r}",
        )
    tz = args.get("tz") or "UTC"
    now = ctx.scheduler.clock.now()
    try:
        name = check_name(args["name"])
        cron = check_cron(args["cron"])
        check_tz(tz)
        first_fire = next_fire(cron, tz, now)
    except ScheduleError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"schedule_add: {exc}") from None
    # The template is a single job spec: its errors name it `job:`, as enqueue's do.
    job = validate_job_spec(args["job"])
    for field in TEMPLATE_FORBIDDEN:
        if field in job:
            raise ProtocolError(
                ErrorCode.INVALID_JOB,
                f"job: field {field!r} is not allowed (the schedule sets it)",
            )
    check_command(job["command"], ctx.config["max-command-bytes"], "job")
    if job.get("env"):
        job["env"] = job_environment(job["env"], ctx.config["max-env-bytes"], "job")
    cwd = args.get("cwd") or "/"
    environ = args.get("environ")
    environ = submitter_environment(
        cwd, dict(os.environ) if environ is None else environ, ctx.config["max-env-bytes"]
    )
    schedule = Schedule(
        name=name,
        cron=cron,
        tz=tz,
        catch_up=catch_up,
        paused=False,
        job=job,
        cwd=cwd,
        environ=environ,
        created_at=now,
        fired_through=now,  # firings start after the schedule exists
        next_fire=first_fire,
    )
    # Its jobs run as whoever added it, as enqueued jobs do (see runas.py).
    schedule.run_uid, schedule.run_gid = run_identity(CURRENT_PEER.get(), ctx.allow_root)
    await ctx.runner.call(
        _add_schedule, schedule, bool(args.get("replace")), ctx.config["max-schedules"]
    )
    await _schedules_changed(ctx)
    return _record(schedule)


def _add_schedule(store: Store, schedule: Schedule, replace: bool, maximum: int) -> None:
    # Counted in the store call that adds it, so concurrent adds cannot pass the limit.
    names = {s.name for s in store.get_schedules()}
    if schedule.name not in names:
        check_count("schedule_add", len(names), maximum, "schedules", "max-schedules")
    store.add_schedule(schedule, replace)


async def _schedules_changed(ctx: HandlerContext) -> None:
    """Fire what is due now; and the other daemons of a shared store, which armed
    their timers on the schedules as they were, look at them again too."""
    ctx.scheduler.wake()
    await ctx.runner.call(Store.announce_rules, ctx.daemon_id)


async def schedule_list(ctx: HandlerContext, args: dict) -> dict:
    schedules = await ctx.runner.call(Store.get_schedules)
    return {"schedules": [_record(s) for s in schedules]}


async def schedule_remove(ctx: HandlerContext, args: dict) -> dict:
    await ctx.runner.call(Store.remove_schedule, args["name"])
    await _schedules_changed(ctx)
    return {"name": args["name"], "removed": True}


async def schedule_pause(ctx: HandlerContext, args: dict) -> dict:
    await ctx.runner.call(Store.update_schedule, args["name"], {"paused": True})
    await _schedules_changed(ctx)
    return await _one(ctx, args["name"])


async def schedule_resume(ctx: HandlerContext, args: dict) -> dict:
    [schedule] = await ctx.runner.call(Store.get_schedules, args["name"])
    if schedule.paused:
        # Firings that fell in the pause are not caught up: resuming starts afresh.
        now = ctx.scheduler.clock.now()
        changes = {
            "paused": False,
            "fired_through": now,
            "next_fire": next_fire(schedule.cron, schedule.tz, now),
        }
        await ctx.runner.call(Store.update_schedule, args["name"], changes)
        await _schedules_changed(ctx)
    return await _one(ctx, args["name"])


async def schedule_run(ctx: HandlerContext, args: dict) -> dict:
    # The defaults a timed firing uses (see Scheduler); the job is due now, on the
    # dispatcher's clock, whatever clock the schedules run on.
    job_id, existed = await ctx.runner.call(
        fire_now, args["name"], time.time(), dict(ctx.config.values)
    )
    if not existed:
        ctx.dispatcher.kick()
        ctx.telemetry.changed()
    return {"name": args["name"], "id": job_id, "existing": existed}


async def _one(ctx: HandlerContext, name: str) -> dict:
    [schedule] = await ctx.runner.call(Store.get_schedules, name)
    return _record(schedule)


def _record(schedule: Schedule) -> dict:
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "tz": schedule.tz,
        "catch_up": schedule.catch_up,
        "paused": schedule.paused,
        "job": schedule.job,
        "cwd": schedule.cwd,
        "created_at": to_iso(schedule.created_at),
        "next_fire": None if schedule.paused else to_iso(schedule.next_fire),
        "fired_through": to_iso(schedule.fired_through),
        "last_job": schedule.last_job,
    }


HANDLERS = {
    "schedule_add": schedule_add,
    "schedule_list": schedule_list,
    "schedule_remove": schedule_remove,
    "schedule_pause": schedule_pause,
    "schedule_resume": schedule_resume,
    "schedule_run": schedule_run,
}

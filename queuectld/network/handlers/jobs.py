"""Ops on jobs (PROTOCOL.md 8.2): enqueue, get_job, list_jobs, cancel, wait, logs,
retry, edit, purge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any, NamedTuple

from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import JOB_STATES, TERMINAL_STATES, validate_job_spec
from protocol.ops import ON_DUPLICATE
from protocol.times import parse_iso
from queuectld.config import Config
from queuectld.engine.dispatcher import CANCELED_BY_USER
from queuectld.engine.jobspec import new_job
from queuectld.engine.output_shipping import read_log_chunk
from queuectld.engine.retention import remove_files
from queuectld.network.handlers.context import HandlerContext
from queuectld.network.limits import (
    Waiting,
    check_command,
    job_environment,
    submitter_environment,
)
from queuectld.network.peers import CURRENT_PEER
from queuectld.network.records import job_record
from queuectld.network.runas import run_identity
from queuectld.store import NewJob, Store

log = logging.getLogger("queuectld.jobs")

DEFAULT_PAGE = 100
MAX_PAGE = 10_000
# One `wait` request waits at most this long (clients repeat it): a request
# whose client has gone away must not hold a task forever.
MAX_WAIT = 60.0
# How often a wait on a store shared with other daemons reads its jobs' states.
SHARED_WAIT_CHECK = 0.5
LOG_CHUNK = 256 * 1024
WAITS = Waiting("wait requests", "max-waits")
LOG_FOLLOWS = Waiting("logs requests with a wait", "max-log-follows")
PURGE_CHUNK = 5000


async def enqueue(ctx: HandlerContext, args: dict) -> dict:
    config = ctx.config
    specs = args["jobs"]
    if len(specs) > config["max-batch"]:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"batch of {len(specs)} jobs exceeds max-batch {config['max-batch']}",
        )
    on_duplicate = args.get("on_duplicate") or "ignore"
    if on_duplicate not in ON_DUPLICATE:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"enqueue: on_duplicate must be one of {', '.join(ON_DUPLICATE)}, not {on_duplicate!r}",
        )
    cwd = args.get("cwd") or "/"
    environ = args.get("environ")
    if environ is None:
        environ = dict(os.environ)
    environ = submitter_environment(cwd, environ, config["max-env-bytes"])
    run_uid, run_gid = run_identity(CURRENT_PEER.get(), ctx.allow_root)
    now = time.time()
    single = len(specs) == 1
    limits = JobLimits.of(config)
    jobs = [
        _new_job(spec, None if single else i, cwd, environ, now, limits)
        for i, spec in enumerate(specs)
    ]
    for job in jobs:
        job.run_uid, job.run_gid = run_uid, run_gid
    inserting = asyncio.get_running_loop().create_future()

    def inserted(added: Any, error: BaseException | None) -> None:
        # A callback, not a task resuming later: watchers hear `pending` before the
        # claim that shares this batch reports the same jobs `processing`.
        if error is not None:
            inserting.set_exception(error)
            return
        if ctx.events.watchers:
            existing = set(added.existing)
            for job, job_id in zip(jobs, added.ids, strict=True):
                if job_id not in existing:
                    ctx.events.job_changed(job_id, "pending", job.queue)
        inserting.set_result(added)

    ctx.runner.submit(Store.insert_jobs, (jobs, now, on_duplicate), {}, inserted)
    # Queued right behind the insert, the claim for idle workers shares its batch
    # and commit: the job is on its way to a worker as the client gets its answer.
    ctx.dispatcher.kick()
    added = await inserting
    existing = set(added.existing)
    ctx.telemetry.jobs_enqueued(
        job.queue for job, job_id in zip(jobs, added.ids, strict=True) if job_id not in existing
    )
    log.debug(
        "enqueued %d job(s)", len(added.ids), extra={"event": "enqueued", "count": len(added.ids)}
    )
    return {"ids": added.ids, "existing": added.existing}


class JobLimits(NamedTuple):
    """The settings every job of a request is checked against, read once per request
    rather than four times per job."""

    command_bytes: int
    env_bytes: int
    max_retries: int
    timeout: float

    @classmethod
    def of(cls, config: Config) -> JobLimits:
        return cls(
            config["max-command-bytes"],
            config["max-env-bytes"],
            config["max-retries"],
            config["job-timeout"],
        )


def _new_job(
    spec: Any, index: int | None, cwd: str, environ: dict, now: float, limits: JobLimits
) -> NewJob:
    spec = validate_job_spec(spec, index)
    what = "job" if index is None else f"job #{index + 1}"
    command = spec["command"]
    check_command(command, limits.command_bytes, what)
    env = job_environment(spec.get("env"), limits.env_bytes, what)
    if spec.get("run_at") is not None:
        run_at = _parse_run_at(spec["run_at"], what, ErrorCode.INVALID_JOB)
    else:
        run_at = now + float(spec.get("delay") or 0)
    if any(not dep for dep in spec.get("after") or ()):
        raise ProtocolError(ErrorCode.INVALID_JOB, f"{what}: 'after' holds an empty job id")
    return new_job(
        spec,
        job_id=spec.get("id"),
        run_at=run_at,
        cwd=cwd,
        environ=environ,
        env=env,
        max_retries=limits.max_retries,
        timeout=limits.timeout,
    )


def _parse_run_at(text: str, what: str, code: ErrorCode) -> float:
    try:
        return parse_iso(text)
    except (ValueError, OverflowError, OSError):  # OSError: beyond the platform's time_t
        raise ProtocolError(code, f"{what}: run_at {text!r} is not an ISO 8601 time") from None


async def get_job(ctx: HandlerContext, args: dict) -> dict:
    job = await ctx.runner.call(Store.get_job, args["id"])
    if job is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no job {args['id']!r}")
    return job_record(job)


async def list_jobs(ctx: HandlerContext, args: dict) -> dict:
    states = _states_filter(args.get("state"))
    limit = min(args.get("limit") or DEFAULT_PAGE, MAX_PAGE)
    jobs, cursor = await ctx.runner.call(
        Store.list_jobs, states, args.get("queue"), limit, args.get("after")
    )
    return {"jobs": [job_record(job) for job in jobs], "next": cursor}


def _states_filter(state: Any) -> list[str] | None:
    """`state` as a list: one state (the original form) or a non-empty array of them."""
    if state is None:
        return None
    states = [state] if isinstance(state, str) else state
    if not isinstance(states, list) or not states or not all(isinstance(s, str) for s in states):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            "list_jobs: field 'state' must be a string or a non-empty array of strings",
        )
    for name in states:
        if name not in JOB_STATES:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"unknown state {name!r} (states: {', '.join(JOB_STATES)})",
            )
    return states


async def cancel(ctx: HandlerContext, args: dict) -> dict:
    job_id = args["id"]
    if ctx.dispatcher.active.get(job_id) is not None:
        waiter = ctx.events.subscribe(job_id)
        try:
            ctx.dispatcher.kill_running(job_id, CANCELED_BY_USER)
            await waiter
        finally:
            ctx.events.unsubscribe(job_id, waiter)
        return await get_job(ctx, {"id": job_id})
    if ctx.shared_store:
        owner = await ctx.runner.call(Store.request_cancel, job_id, time.time())
        if owner is not None and owner != ctx.daemon_id:
            # Another daemon runs it, and learns of the request through the store; no
            # event of ours marks the end, so only the store is read until then.
            no_event = asyncio.get_running_loop().create_future()
            await _wait_for_ends(ctx, [no_event], [job_id], MAX_WAIT)
            return await get_job(ctx, {"id": job_id})
    # A job held ahead is not running yet: it goes back, then is canceled waiting.
    canceled = await ctx.dispatcher.change_rules(
        lambda: ctx.runner.call(Store.cancel_waiting_job, job_id, time.time()),
        job_id=job_id,
        kick=False,
    )
    ctx.events.job_changed(job_id, "canceled", canceled.job.queue)
    for dependent in canceled.dependents:
        ctx.events.job_changed(dependent, "canceled")
    ctx.telemetry.changed()
    log.info(
        "job %s canceled before it ran", job_id, extra={"event": "job_canceled", "job": job_id}
    )
    return job_record(canceled.job)


async def wait(ctx: HandlerContext, args: dict) -> dict:
    ids = list(dict.fromkeys(args["ids"]))
    # Each id is a subscription and a store read, all in one store call: as many
    # as one enqueue may add, no more.
    if len(ids) > ctx.config["max-batch"]:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"wait: {len(ids)} jobs exceed max-batch {ctx.config['max-batch']}",
        )
    events = ctx.events
    # Subscribe before reading states so a job finishing in between is not missed.
    waiters = {job_id: events.subscribe(job_id) for job_id in ids}
    try:
        states = await ctx.runner.call(_states_of, ids)
        missing = [job_id for job_id, state in states.items() if state is None]
        if missing:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no job {missing[0]!r}")
        pending = [waiters[j] for j, s in states.items() if s not in TERMINAL_STATES]
        if pending:
            timeout = args.get("timeout")
            timeout = MAX_WAIT if timeout is None else min(timeout, MAX_WAIT)
            with WAITS.slot(ctx.config["max-waits"]):
                await _wait_for_ends(ctx, pending, ids, timeout)
        states = await ctx.runner.call(_states_of, ids)
    finally:
        for job_id, waiter in waiters.items():
            events.unsubscribe(job_id, waiter)
    done = all(state in TERMINAL_STATES for state in states.values())
    return {"states": states, "done": done}


async def _wait_for_ends(
    ctx: HandlerContext, pending: list[asyncio.Future], ids: list[str], timeout: float
) -> None:
    """Until every pending waiter fired or `timeout` passed. Job events are this
    daemon's own: on a shared store a job another daemon runs ends without one, so
    there the states are also read from the store every SHARED_WAIT_CHECK seconds."""
    if not ctx.shared_store:
        await asyncio.wait(pending, timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        _, waiting = await asyncio.wait(pending, timeout=min(left, SHARED_WAIT_CHECK))
        if not waiting:
            return
        states = await ctx.runner.call(_states_of, ids)
        if all(state in TERMINAL_STATES for state in states.values() if state is not None):
            return


def _states_of(store: Store, ids: list[str]) -> dict[str, str | None]:
    return {job_id: store.job_state(job_id) for job_id in ids}


async def logs(ctx: HandlerContext, args: dict) -> dict:
    job_id = args["id"]
    offset = args.get("offset", 0)
    limit = min(args.get("limit") or LOG_CHUNK, LOG_CHUNK)
    deadline = time.monotonic() + min(args.get("wait") or 0, 30)
    settle_until = time.monotonic() + 1.0
    shipped = ctx.runner.store.ships_output
    with contextlib.ExitStack() as follow:
        following = False  # only a request that waits for output takes a slot
        while True:
            seq, run, state, path = await ctx.runner.call(
                Store.job_log_path, job_id, args.get("run")
            )
            active = ctx.dispatcher.active.get(job_id)
            here = active is not None and active.job.run == run
            if (
                not shipped
                and state == "processing"
                and active is None
                and time.monotonic() < settle_until
            ):
                # The run ended (or was just claimed) while we read the store: its final
                # log path is still being written. Answering now would tell a follower
                # the run is over before it has read the last of the output. (A store
                # that ships output gets the rest with the result: no need to wait.)
                await asyncio.sleep(0.01)
                continue
            if here:
                path = active.log_path
            # Running elsewhere: the latest run of a processing job, on another daemon.
            elsewhere = (
                shipped
                and not here
                and state == "processing"
                and run_is_latest(args.get("run"), run)
            )
            running = here or elsewhere
            if here or (path and os.path.exists(path)):
                data = read_log_chunk(path, offset, limit)
            elif shipped:
                data = await ctx.runner.call(Store.read_output, seq, run, offset, limit)
            else:
                data = b""
            if data or not running or time.monotonic() >= deadline:
                return {
                    "run": run,
                    "state": state,
                    "running": running,
                    "data": data,
                    "offset": offset + len(data),
                }
            # Following a live job: its log grows in a file only the worker writes,
            # or, run by another daemon of a shared store, in the store.
            if not following:
                follow.enter_context(LOG_FOLLOWS.slot(ctx.config["max-log-follows"]))
                following = True
            await asyncio.sleep(0.2)


def run_is_latest(asked: int | None, run: int) -> bool:
    """Whether the run answered is the job's latest (a processing job runs that one)."""
    return asked is None or asked == run


async def retry(ctx: HandlerContext, args: dict) -> dict:
    job = await ctx.runner.call(Store.retry_job, args["id"], time.time())
    ctx.events.job_changed(job.id, job.state, job.queue)
    ctx.dispatcher.kick()
    return job_record(job)


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
        changes["run_at"] = _parse_run_at(args["run_at"], "edit", ErrorCode.BAD_REQUEST)
    elif "delay" in args:
        changes["run_at"] = now + float(args["delay"])
    if not changes:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "edit: give at least one of command, priority, run_at, queue"
        )
    # It may be held ahead (not yet running), be due sooner, or move to a queue with room.
    job = await ctx.dispatcher.change_rules(
        lambda: ctx.runner.call(Store.edit_job, args["id"], changes, now), job_id=args["id"]
    )
    return job_record(job)


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
            await loop.run_in_executor(None, remove_files, logs)
        if count < PURGE_CHUNK:
            return {"purged": total}


HANDLERS = {
    "enqueue": enqueue,
    "get_job": get_job,
    "list_jobs": list_jobs,
    "cancel": cancel,
    "wait": wait,
    "logs": logs,
    "retry": retry,
    "edit": edit,
    "purge": purge,
}

"""Jobs to rows and back, for every SQL backend: the one way a new job becomes a row
(for the plain and the dependent insert paths), and the one way a stored job, run,
claim or schedule becomes a typed row. Backends select these columns in this order."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import msgpack

from queuectld.store.base import ClaimedJob, JobRow, NewJob, RunRow, Schedule

JOB_COLUMNS = (
    "seq, id, command, state, queue, priority, attempts, max_retries, timeout, runs, "
    "created_at, updated_at, run_at, started_at, finished_at, exit_code, last_error, "
    "unique_key, after, blocked"
)
# Of runs r LEFT JOIN daemons d: the host is known while the run's daemon is registered.
RUN_COLUMNS = (
    "r.run, r.worker, r.pid, r.started_at, r.finished_at, r.outcome, r.exit_code, r.signal, "
    "r.error, r.counted, r.log_path, r.late_result, r.owner, d.host"
)
# What a claim returns of each job it moved to processing (see claimed_job).
CLAIM_COLUMNS = (
    "seq, id, command, queue, attempts, max_retries, timeout, runs, env_id, env, run_at, "
    "run_uid, run_gid"
)
INSERT_JOB_COLUMNS = (
    "id, command, state, queue, priority, max_retries, timeout, env_id, env, created_at, "
    "updated_at, run_at, finished_at, last_error, blocked, after, unique_key, run_uid, run_gid"
)
SCHEDULE_COLUMNS = (
    "name, cron, tz, catch_up, paused, job, env_id, created_at, fired_through, next_fire, "
    "last_job, run_uid, run_gid"
)
# The runs still in progress, as RunningAttempt fields; callers add whose.
RUNNING_ATTEMPTS = (
    "SELECT r.job_seq, j.id, r.run, r.pid, r.pid_started, r.started_at, r.owner "
    "FROM runs r JOIN jobs j ON j.seq = r.job_seq WHERE r.outcome = 'running'"
)
# Bytes of job records in one page of list_jobs, well under a client's 8 MiB frame.
PAGE_BYTES = 4 * 1024 * 1024
PAGE_ROW_OVERHEAD = 512


def insert_job_sql(mark: str) -> str:
    """INSERT INTO jobs for one row, with the backend's parameter mark (`?`, `%s`)."""
    count = INSERT_JOB_COLUMNS.count(",") + 1
    return f"INSERT INTO jobs ({INSERT_JOB_COLUMNS}) VALUES ({', '.join([mark] * count)})"


def job_from_row(
    row: tuple,
    history: tuple[RunRow, ...] | None = None,
    cwd: str | None = None,
    env_blob: bytes | None = None,
) -> JobRow:
    """A JobRow from the JOB_COLUMNS of one row (and, for the whole job, its history,
    directory and own variables)."""
    *columns, after, blocked = row
    env = None if history is None else (unpack_environment(env_blob) if env_blob else {})
    return JobRow(*columns, tuple(json.loads(after)) if after else (), blocked, history, cwd, env)


def run_from_row(row: tuple) -> RunRow:
    """A RunRow from the RUN_COLUMNS of one row."""
    *columns, counted, log_path, late_result, owner, host = row
    late = json.loads(late_result) if late_result is not None else None
    return RunRow(*columns, bool(counted), log_path, late, owner, host)


def fit_page(rows: list[tuple], limit: int) -> tuple[list[tuple], bool]:
    """A page of at most `limit` of the JOB_COLUMNS rows read (limit + 1 were asked for),
    and whether more follow.

    A page must fit in one answer frame whatever the jobs hold (a command may be
    128 KiB): it stops early, and the cursor says where the next page starts.
    """
    more = len(rows) > limit
    rows = rows[:limit]
    size = 0
    for count, row in enumerate(rows):
        size += PAGE_ROW_OVERHEAD + sum(len(v) for v in row if isinstance(v, str))
        if size > PAGE_BYTES and count > 0:
            return rows[:count], True
    return rows, more


def job_row(
    job: NewJob,
    job_id: str,
    env_id: int,
    now: float,
    state: str = "pending",
    finished_at: float | None = None,
    error: str | None = None,
    blocked: int = 0,
    after: str | None = None,
) -> tuple:
    """The values of INSERT_JOB_COLUMNS for one new job."""
    env_blob = msgpack.packb(job.env, use_bin_type=True) if job.env else None
    return (
        job_id, job.command, state, job.queue, job.priority, job.max_retries, job.timeout,
        env_id, env_blob, now, now, job.run_at, finished_at, error, blocked, after,
        job.unique_key, job.run_uid, job.run_gid,
    )  # fmt: skip


def after_column(dep_ids: list[str]) -> str | None:
    """The `after` column: the dependencies as given, a JSON array (None: none)."""
    return json.dumps(dep_ids) if dep_ids else None


def late_result_column(late: dict) -> str:
    return json.dumps(late, sort_keys=True)


# -- environments: each distinct (cwd, environment) is stored once ---------------------


def pack_environment(cwd: str, environ: dict[str, str]) -> tuple[bytes, bytes]:
    """(digest, blob) of an environment row: the digest identifies it whatever the
    order of its items, the blob is what a claim unpacks."""
    canonical = msgpack.packb([cwd, sorted(environ.items())], use_bin_type=True)
    digest = hashlib.blake2b(canonical, digest_size=16).digest()
    return digest, msgpack.packb(environ, use_bin_type=True)


def unpack_environment(blob: bytes) -> dict[str, str]:
    return msgpack.unpackb(blob, raw=False)


def batch_environment_ids(
    jobs: list[NewJob], environment_id: Callable[[str, dict[str, str]], int]
) -> list[int]:
    """The environment row of each job of a batch, looked up once per distinct
    environment: the jobs of one request share one environment object."""
    by_object: dict[tuple[int, str], int] = {}
    env_ids = []
    for job in jobs:
        key = (id(job.environ), job.cwd)  # the jobs keep the objects alive meanwhile
        env_id = by_object.get(key)
        if env_id is None:
            env_id = by_object[key] = environment_id(job.cwd, job.environ)
        env_ids.append(env_id)
    return env_ids


def claimed_job(row: tuple, cwd: str, environ: dict[str, str], prior_state: str) -> ClaimedJob:
    """A ClaimedJob from the CLAIM_COLUMNS of one row and its environment row; the
    job's own env is laid over the submitter's."""
    (seq, job_id, command, queue, attempts, max_retries, timeout, run, _, env, due_at,
     run_uid, run_gid) = row  # fmt: skip
    if env:
        environ = {**environ, **unpack_environment(env)}
    return ClaimedJob(
        seq, job_id, command, queue, attempts, max_retries, timeout, run, cwd, environ,
        run_uid, run_gid, due_at=due_at, prior_state=prior_state,
    )  # fmt: skip


# -- schedules -------------------------------------------------------------------------


def schedule_values(schedule: Schedule, env_id: int) -> tuple:
    """The values of SCHEDULE_COLUMNS for a schedule (paused stays a bool: a backend
    with integer flags converts it)."""
    return (
        schedule.name, schedule.cron, schedule.tz, schedule.catch_up, schedule.paused,
        msgpack.packb(schedule.job, use_bin_type=True), env_id, schedule.created_at,
        schedule.fired_through, schedule.next_fire, schedule.last_job, schedule.run_uid,
        schedule.run_gid,
    )  # fmt: skip


def schedule_from_row(row: tuple, cwd: str, environ: dict[str, str]) -> Schedule:
    """A Schedule from the SCHEDULE_COLUMNS of one row and its environment row."""
    (name, cron, tz, catch_up, paused, job, _, created_at, fired_through, next_fire,
     last_job, run_uid, run_gid) = row  # fmt: skip
    return Schedule(
        name=name, cron=cron, tz=tz, catch_up=catch_up, paused=bool(paused),
        job=msgpack.unpackb(job, raw=False), cwd=cwd, environ=environ,
        created_at=created_at, fired_through=fired_through, next_fire=next_fire,
        last_job=last_job, run_uid=run_uid, run_gid=run_gid,
    )  # fmt: skip

"""Jobs to rows and back: the one way a new job becomes a row (for the plain and the
dependent insert paths), and the one way a stored job or run becomes a typed row."""

from __future__ import annotations

import json

import msgpack

from queuectld.store.base import JobRow, NewJob, RunRow

JOB_COLUMNS = (
    "seq, id, command, state, queue, priority, attempts, max_retries, timeout, runs, "
    "created_at, updated_at, run_at, started_at, finished_at, exit_code, last_error, "
    "unique_key, after, blocked"
)
RUN_COLUMNS = (
    "run, worker, pid, started_at, finished_at, outcome, exit_code, signal, error, counted, "
    "log_path, late_result"
)


def job_from_row(row: tuple, history: tuple[RunRow, ...] | None = None) -> JobRow:
    """A JobRow from the JOB_COLUMNS of one row."""
    *columns, after, blocked = row
    return JobRow(*columns, tuple(json.loads(after)) if after else (), blocked, history)


def run_from_row(row: tuple) -> RunRow:
    """A RunRow from the RUN_COLUMNS of one row."""
    *columns, counted, log_path, late_result = row
    late = json.loads(late_result) if late_result is not None else None
    return RunRow(*columns, bool(counted), log_path, late)


INSERT_JOB = (
    "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, env_id, env, "
    "created_at, updated_at, run_at, finished_at, last_error, blocked, after, unique_key, "
    "run_uid, run_gid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


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
    """The values of INSERT_JOB for one new job."""
    env_blob = msgpack.packb(job.env, use_bin_type=True) if job.env else None
    return (
        job_id, job.command, state, job.queue, job.priority, job.max_retries, job.timeout,
        env_id, env_blob, now, now, job.run_at, finished_at, error, blocked, after,
        job.unique_key, job.run_uid, job.run_gid,
    )  # fmt: skip

"""The one way a new job becomes a row, for the plain and the dependent insert paths."""

from __future__ import annotations

import msgpack

from queuectld.store.base import NewJob

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

"""The one way a new job becomes a row, for the plain and the dependent insert paths."""

from __future__ import annotations

import secrets

import msgpack

from queuectld.store.base import NewJob, StoreError

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


# Draws of generated ids for a batch whose ids turn out taken (each is a rare event).
ID_ATTEMPTS = 5


def random_ids(count: int) -> list[str]:
    """`count` random 12-hex-digit job ids from one call to the system's random source."""
    digits = secrets.token_bytes(6 * count).hex()
    return [digits[i : i + 12] for i in range(0, 12 * count, 12)]


def fresh_id(avoid: set[str]) -> str:
    """A random job id not in `avoid`."""
    while True:
        [job_id] = random_ids(1)
        if job_id not in avoid:
            return job_id


def batch_ids(jobs: list[NewJob]) -> list[str]:
    """Each job's id: its own, or a new random one unique in the batch.

    A generated id may still be taken by a stored job (48 random bits: filling
    a store with a million jobs meets that about once in 560 fills, with ten
    million about once in six); the insert finds that out and draws again
    (see _replace_taken_ids, _insert_one).
    """
    chosen: set[str] = set()
    for job in jobs:
        if job.id in chosen:
            raise StoreError("conflict", f"job id {job.id!r} appears twice in the batch")
        if job.id:
            chosen.add(job.id)
    generated = iter(random_ids(len(jobs) - len(chosen)))
    ids = []
    for job in jobs:
        job_id = job.id
        if not job_id:
            job_id = next(generated)
            if job_id in chosen:
                job_id = fresh_id(chosen)
            chosen.add(job_id)
        ids.append(job_id)
    return ids

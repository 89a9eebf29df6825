"""A checked job spec becomes a `NewJob`, the same way for every path that makes jobs
(an enqueue, a schedule firing): which fields default to which settings is
decided here once."""

from __future__ import annotations

from queuectld.store import NewJob


def new_job(
    spec: dict,
    *,
    job_id: str | None,
    run_at: float,
    cwd: str,
    environ: dict[str, str],
    env: dict[str, str],
    max_retries: int,
    timeout: float,
    run_uid: int | None = None,
    run_gid: int | None = None,
) -> NewJob:
    """`max_retries` and `timeout` are the defaults for a spec that leaves them out."""
    spec_timeout = spec.get("timeout")
    return NewJob(
        id=job_id,
        command=spec["command"],
        max_retries=spec.get("max_retries", max_retries),
        priority=spec.get("priority", 0),
        run_at=run_at,
        timeout=float(timeout if spec_timeout is None else spec_timeout),
        queue=spec.get("queue", "default"),
        cwd=cwd,
        environ=environ,
        env=env,
        after=list(spec.get("after") or ()),
        unique_key=spec.get("unique_key"),
        run_uid=run_uid,
        run_gid=run_gid,
    )

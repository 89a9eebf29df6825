"""One method per op, in the sections of docs/PROTOCOL.md 8. Mixed into `Client`,
whose `call(op, **args)` sends them."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

# Variables that belong to the client's connection and must not reach jobs.
PRIVATE_ENV = ("QUEUECTL_TOKEN", "QUEUECTL_TOKEN_FILE")
DEFAULT_BATCH = 10_000


class OpCalls:
    """Typed calls over `call`, which the class it is mixed into provides."""

    def call(self, op: str, **args: Any) -> Any:
        raise NotImplementedError

    def _stream(self) -> Iterator[dict]:
        raise NotImplementedError

    # -- the session -----------------------------------------------------------

    def hello(self) -> dict:
        return self.call("hello", client="queuectl-python")

    def shutdown(self, now: bool = False) -> dict:
        return self.call("shutdown", now=now)

    # -- jobs ------------------------------------------------------------------

    def enqueue(
        self, *jobs: dict, cwd: str | None = None, environ: dict[str, str] | None = None
    ) -> list[str]:
        """Enqueue jobs in one transaction; each runs in `cwd` with `environ` plus its env.

        By default a job gets this process's working directory and environment,
        so PATH and virtualenvs behave as in the shell that enqueued it.
        """
        result = self.call("enqueue", jobs=list(jobs), **self._context(cwd, environ))
        return result["ids"]

    def enqueue_many(
        self,
        jobs: Iterable[dict],
        batch_size: int = DEFAULT_BATCH,
        cwd: str | None = None,
        environ: dict[str, str] | None = None,
        on_duplicate: str | None = None,
    ) -> Iterator[list[str]]:
        """Enqueue an iterable of jobs in batches; yields the ids of each batch."""
        context = self._context(cwd, environ)
        if on_duplicate is not None:
            context["on_duplicate"] = on_duplicate
        batch: list[dict] = []
        for job in jobs:
            batch.append(job)
            if len(batch) >= batch_size:
                yield self.call("enqueue", jobs=batch, **context)["ids"]
                batch = []
        if batch:
            yield self.call("enqueue", jobs=batch, **context)["ids"]

    def submit(
        self,
        *jobs: dict,
        on_duplicate: str | None = None,
        cwd: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> dict:
        """Enqueue like `enqueue`, returning {"ids": [...], "existing": [...]}: the ids of
        jobs whose unique key a live job held (on_duplicate 'ignore', the default) are
        the holders' ids, also listed in "existing"; 'error' refuses the batch instead."""
        context = self._context(cwd, environ)
        return self.call("enqueue", jobs=list(jobs), on_duplicate=on_duplicate, **context)

    @staticmethod
    def _context(cwd: str | None, environ: dict[str, str] | None) -> dict:
        if environ is None:
            environ = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
        return {"cwd": cwd or os.getcwd(), "environ": environ}

    def get_job(self, job_id: str) -> dict:
        return self.call("get_job", id=job_id)

    def list_jobs(
        self,
        state: str | list[str] | None = None,
        queue: str | None = None,
        limit: int | None = None,
    ) -> list[dict]:
        """Jobs in creation order, in `state` (or any of a list of states); all of them
        when limit is None (paged underneath)."""
        return self._pages("list_jobs", limit, state=state, queue=queue)

    def _pages(self, op: str, limit: int | None, **args: Any) -> list[dict]:
        jobs: list[dict] = []
        after = None
        while True:
            page = 1000 if limit is None else min(1000, limit - len(jobs))
            result = self.call(op, limit=page, after=after, **args)
            jobs.extend(result["jobs"])
            after = result["next"]
            if after is None or (limit is not None and len(jobs) >= limit):
                return jobs

    def cancel(self, job_id: str) -> dict:
        return self.call("cancel", id=job_id)

    def wait(self, job_ids: list[str], timeout: float | None = None) -> dict:
        """Until every job is terminal or `timeout` passes (None: no limit).

        The daemon answers one wait request within a minute at most; this repeats it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            result = self.call("wait", ids=job_ids, timeout=left)
            if result["done"] or (deadline is not None and time.monotonic() >= deadline):
                return result

    def logs(
        self,
        job_id: str,
        run: int | None = None,
        offset: int = 0,
        wait: float | None = None,
        limit: int | None = None,
    ) -> dict:
        return self.call("logs", id=job_id, run=run, offset=offset, wait=wait, limit=limit)

    def retry(self, job_id: str) -> dict:
        return self.call("retry", id=job_id)

    def edit(self, job_id: str, **changes: Any) -> dict:
        """Change command, priority, run_at (ISO 8601) or delay, or queue of a pending job."""
        return self.call("edit", id=job_id, **changes)

    def purge(self, state: str, older_than: float, queue: str | None = None) -> int:
        return self.call("purge", state=state, older_than=older_than, queue=queue)["purged"]

    # -- the dead letter queue -------------------------------------------------

    def dlq_list(self, queue: str | None = None, limit: int | None = None) -> list[dict]:
        return self._pages("dlq_list", limit, queue=queue)

    def dlq_retry(
        self,
        job_id: str | None = None,
        all: bool = False,
        queue: str | None = None,
        since: str | None = None,
    ) -> list[str]:
        """Retry one dead job, or all of them (of `queue`, dead since ISO time `since`)."""
        return self.call("dlq_retry", id=job_id, all=all or None, queue=queue, since=since)["ids"]

    def dlq_purge(self, job_id: str | None = None, all: bool = False) -> list[str]:
        """Delete one dead job, or every dead job, with its runs and logs."""
        return self.call("dlq_purge", id=job_id, all=all or None)["ids"]

    # -- the fleet -------------------------------------------------------------

    def status(self, next: int | None = None, processes: bool | None = None) -> dict:
        """Counts, fleet and daemon; `next` adds the N soonest waiting jobs, `processes`
        every worker with its job's CPU time and memory."""
        return self.call("status", next=next, processes=processes)

    def scale_workers(self, count: int | None = None) -> dict:
        """Resize the fleet; without a count, start it at its size without shrinking it."""
        return self.call("worker_scale", count=count)

    def stop_workers(self, now: bool = False, wait: bool = True) -> dict:
        return self.call("worker_stop", now=now, wait=wait)

    def drain(self, wait: bool = False, timeout: float | None = None) -> dict:
        """Start no new job (running ones finish; enqueues are still accepted)."""
        return self.call("worker_drain", wait=wait or None, timeout=timeout)

    def resume_workers(self) -> dict:
        """End a drain: jobs start again."""
        return self.call("worker_resume")

    # -- queues ----------------------------------------------------------------

    def queue_set(
        self,
        name: str,
        concurrency: int | None = None,
        priority: int | None = None,
        on_finish: str | None = None,
    ) -> dict:
        return self.call(
            "queue_set", name=name, concurrency=concurrency, priority=priority, on_finish=on_finish
        )

    def queue_list(self) -> list[dict]:
        return self.call("queue_list")["queues"]

    def queue_pause(self, name: str) -> dict:
        return self.call("queue_pause", name=name)

    def queue_resume(self, name: str) -> dict:
        return self.call("queue_resume", name=name)

    # -- schedules -------------------------------------------------------------

    def schedule_add(
        self,
        name: str,
        cron: str,
        job: dict,
        tz: str | None = None,
        catch_up: str | None = None,
        replace: bool = False,
        cwd: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> dict:
        return self.call(
            "schedule_add",
            name=name,
            cron=cron,
            job=job,
            tz=tz,
            catch_up=catch_up,
            replace=replace or None,
            **self._context(cwd, environ),
        )

    def schedule_list(self) -> list[dict]:
        return self.call("schedule_list")["schedules"]

    def schedule_remove(self, name: str) -> dict:
        return self.call("schedule_remove", name=name)

    def schedule_pause(self, name: str) -> dict:
        return self.call("schedule_pause", name=name)

    def schedule_resume(self, name: str) -> dict:
        return self.call("schedule_resume", name=name)

    def schedule_run(self, name: str) -> dict:
        """Enqueue one job of the schedule now: {"name", "id", "existing"}."""
        return self.call("schedule_run", name=name)

    # -- settings --------------------------------------------------------------

    def config_get(self, key: str) -> Any:
        return self.config_entry(key)["value"]

    def config_entry(self, key: str) -> dict:
        """{"key", "value"}, and "source" when the value in force is not the stored one."""
        return self.call("config_get", key=key)

    def config_set(self, key: str, value: Any) -> Any:
        return self.call("config_set", key=key, value=value)["value"]

    def config_list(self) -> dict:
        return self.call("config_list")

    # -- monitoring ------------------------------------------------------------

    def stats(self, queue: str | None = None, per_minute: bool = False) -> dict:
        return self.call("stats", queue=queue, per_minute=per_minute or None)

    def complete_ids(
        self, prefix: str = "", states: list[str] | None = None, limit: int | None = None
    ) -> list[str]:
        return self.call("complete_ids", prefix=prefix, states=states, limit=limit)["ids"]

    def watch(self, interval: float | None = None) -> Iterator[dict]:
        """Subscribe to job changes and counts (PROTOCOL.md 8.8 `watch`).

        Returns an iterator of the stream's frames, `{"type": "snapshot", ...}` or
        `{"type": "jobs", ...}`, that ends when the connection does. The connection
        then belongs to the stream: use another client for other requests, and
        close this one to stop watching.
        """
        self.call("watch", interval=interval)
        return self._stream()

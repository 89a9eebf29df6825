"""Client calls that control what runs when: queues, draining, re-running and
editing jobs, purging, schedules. Mixed into `Client`."""

from __future__ import annotations

from typing import Any


class ControlOps:
    """Uses `call(op, **args)` and `_context(cwd, environ)` of the `Client` it is mixed into."""

    # -- enqueue with duplicates reported -----------------------------------

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
        context = self._context(cwd, environ)  # type: ignore[attr-defined]
        return self.call("enqueue", jobs=list(jobs), on_duplicate=on_duplicate, **context)

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

    # -- the fleet ---------------------------------------------------------------

    def drain(self, wait: bool = False, timeout: float | None = None) -> dict:
        """Start no new job (running ones finish; enqueues are still accepted)."""
        return self.call("worker_drain", wait=wait or None, timeout=timeout)

    def resume_workers(self) -> dict:
        """End a drain: jobs start again."""
        return self.call("worker_resume")

    # -- re-running, editing, purging ---------------------------------------------

    def retry(self, job_id: str) -> dict:
        return self.call("retry", id=job_id)

    def edit(self, job_id: str, **changes: Any) -> dict:
        """Change command, priority, run_at (ISO 8601) or delay, or queue of a pending job."""
        return self.call("edit", id=job_id, **changes)

    def purge(self, state: str, older_than: float, queue: str | None = None) -> int:
        return self.call("purge", state=state, older_than=older_than, queue=queue)["purged"]

    # -- schedules -------------------------------------------------------------------

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
            **self._context(cwd, environ),  # type: ignore[attr-defined]
        )

    def schedule_list(self) -> list[dict]:
        return self.call("schedule_list")["schedules"]

    def schedule_remove(self, name: str) -> dict:
        return self.call("schedule_remove", name=name)

    def schedule_pause(self, name: str) -> dict:
        return self.call("schedule_pause", name=name)

    def schedule_resume(self, name: str) -> dict:
        return self.call("schedule_resume", name=name)

"""`on_finish` hooks: a shell command the daemon runs after a job ends.

A queue's own `on_finish` wins over the global `on-finish` setting. The hook
runs with the daemon's environment plus facts about the job and its queue:

  QUEUECTL_JOB_ID, QUEUECTL_JOB_STATE (completed, dead or canceled),
  QUEUECTL_EXIT_CODE (empty when there was none), QUEUECTL_ATTEMPT (attempts
  made), QUEUECTL_LOG (log file of the last run, empty when none),
  QUEUECTL_QUEUE, QUEUECTL_QUEUE_<STATE> for every state (counts after the
  job ended) and QUEUECTL_QUEUE_ACTIVE (pending + failed + processing: 0 means
  the queue has nothing left to do).

Hooks run outside the event loop as child processes, a few at a time, in the
order jobs ended; never in a worker slot, so they cannot delay jobs. Their
output goes to logs/hooks.log. A hook that fails or outlives HOOK_TIMEOUT is
logged (and killed) and changes nothing about the job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from protocol.messages import JOB_STATES, TERMINAL_STATES
from queuectld.fleet.procutil import kill_group
from queuectld.store import JobRow, Store
from queuectld.store.runner import StoreRunner

log = logging.getLogger("queuectld.hooks")

HOOK_TIMEOUT = 60.0
PARALLEL_HOOKS = 2
MAX_BACKLOG = 10_000


class Hooks:
    def __init__(
        self,
        runner: StoreRunner,
        global_hook: Callable[[], str],
        log_path: Path,
        cwd: Path,
    ):
        self.runner = runner
        self.global_hook = global_hook
        self.log_path = log_path
        self.cwd = cwd
        self.queue_hooks: dict[str, str] = {}
        self._backlog: asyncio.Queue = asyncio.Queue(MAX_BACKLOG)
        self._tasks: list[asyncio.Task] = []
        self._running: set[asyncio.subprocess.Process] = set()

    def start(self, queue_settings: dict[str, dict]) -> None:
        self.queue_hooks = {q: s["on_finish"] for q, s in queue_settings.items() if s["on_finish"]}
        self._tasks = [asyncio.create_task(self._work()) for _ in range(PARALLEL_HOOKS)]

    def set_queue_hook(self, queue: str, command: str | None) -> None:
        if command:
            self.queue_hooks[queue] = command
        else:
            self.queue_hooks.pop(queue, None)

    def job_ended(self, job_id: str, state: str) -> None:
        """A JobEvents listener: called once a terminal state is committed."""
        if state not in TERMINAL_STATES or not (self.queue_hooks or self.global_hook()):
            return
        try:
            self._backlog.put_nowait(job_id)
        except asyncio.QueueFull:
            log.warning("on_finish hook for job %s dropped: %d hooks waiting", job_id, MAX_BACKLOG)

    async def _work(self) -> None:
        while True:
            job_id = await self._backlog.get()
            try:
                await self._run_for(job_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a hook must never take the daemon down
                log.warning("on_finish hook for job %s failed: %s", job_id, exc)

    async def _run_for(self, job_id: str) -> None:
        facts = await self.runner.call(_job_facts, job_id)
        if facts is None:
            return  # purged meanwhile
        job, counts, log_file = facts
        command = self.queue_hooks.get(job.queue) or self.global_hook()
        if not command:
            return
        env = dict(os.environ)
        env.update(
            {
                "QUEUECTL_JOB_ID": job.id,
                "QUEUECTL_JOB_STATE": job.state,
                "QUEUECTL_EXIT_CODE": "" if job.exit_code is None else str(job.exit_code),
                "QUEUECTL_ATTEMPT": str(job.attempts),
                "QUEUECTL_LOG": log_file or "",
                "QUEUECTL_QUEUE": job.queue,
                "QUEUECTL_QUEUE_ACTIVE": str(
                    counts["pending"] + counts["failed"] + counts["processing"]
                ),
            }
        )
        env.update({f"QUEUECTL_QUEUE_{state.upper()}": str(counts[state]) for state in JOB_STATES})
        self.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.log_path, "ab") as output:
            output.write(f"--- on_finish for job {job_id} ({job.state})\n".encode())
            output.flush()
            process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                env=env,
                cwd=str(self.cwd),
                start_new_session=True,  # its own process group, killed whole on timeout
            )
        self._running.add(process)
        try:
            status = await asyncio.wait_for(process.wait(), HOOK_TIMEOUT)
        except asyncio.TimeoutError:
            kill_group(process.pid, signal.SIGKILL)
            await process.wait()
            log.warning("on_finish hook for job %s killed after %g s", job_id, HOOK_TIMEOUT)
            return
        finally:
            self._running.discard(process)
        if status != 0:
            log.warning("on_finish hook for job %s exited with %d", job_id, status)

    async def close(self) -> None:
        """Stop taking hooks; kill the ones still running (the daemon is stopping)."""
        for task in self._tasks:
            task.cancel()
        for process in list(self._running):
            kill_group(process.pid, signal.SIGKILL)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for process in list(self._running):
            await process.wait()


def _job_facts(store: Store, job_id: str) -> tuple[JobRow, dict, str | None] | None:
    job = store.get_job(job_id, history=True)
    if job is None:
        return None
    log_file = job.history[-1].log_path if job.history else None
    return job, store.queue_counts(job.queue), log_file

"""Job events: waiters for job outcomes, so `wait` never polls the store, and
watchers that stream every state change to `watch` subscribers."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

from protocol.messages import TERMINAL_STATES

# A watcher that falls this many distinct jobs behind loses the newest changes
# (counted, and told) rather than growing the daemon's memory without bound.
WATCH_BACKLOG = 1000


class Watcher:
    """One `watch` subscriber's backlog: the latest state of each job changed since
    it last read, oldest first. A job that changes twice before the subscriber reads
    is sent once, with its newest state; past WATCH_BACKLOG jobs, changes are
    dropped and counted, and the subscriber learns how many with its next frame."""

    def __init__(self, backlog: int = WATCH_BACKLOG) -> None:
        self.backlog = backlog
        self.changes: dict[str, tuple[str, str | None]] = {}
        self.dropped = 0
        self.ready = asyncio.Event()

    def add(self, job_id: str, state: str, queue: str | None) -> None:
        if job_id in self.changes:
            # Kept in its first place: reading order is that of the first change.
            self.changes[job_id] = (state, queue or self.changes[job_id][1])
        elif len(self.changes) < self.backlog:
            self.changes[job_id] = (state, queue)
        else:
            self.dropped += 1
        self.ready.set()

    def take(self) -> tuple[list[dict], int]:
        """The pending changes and the count of those dropped, leaving it empty."""
        jobs = [
            {"id": job_id, "state": state, "queue": queue}
            for job_id, (state, queue) in self.changes.items()
        ]
        dropped, self.changes, self.dropped = self.dropped, {}, 0
        self.ready.clear()
        return jobs, dropped


class JobEvents:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future]] = defaultdict(set)
        # Called with (job id, state) for every terminal state, after it is committed.
        self.listeners: list[Callable[[str, str], None]] = []
        self.watchers: set[Watcher] = set()

    def subscribe(self, job_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._waiters[job_id].add(future)
        return future

    def unsubscribe(self, job_id: str, future: asyncio.Future) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[job_id]

    def job_changed(self, job_id: str, state: str, queue: str | None = None) -> None:
        """A job's new state, once it is committed (or, for `processing`, once the
        job has been handed to a worker). With no watcher this costs one check."""
        if self.watchers:
            for watcher in self.watchers:
                watcher.add(job_id, state, queue)
        if state not in TERMINAL_STATES:
            return
        for listener in self.listeners:
            listener(job_id, state)
        for future in self._waiters.pop(job_id, ()):
            if not future.done():
                future.set_result(state)

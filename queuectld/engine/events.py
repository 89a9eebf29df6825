"""Waiters for job outcomes, so `wait` never polls the store."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

from protocol.messages import TERMINAL_STATES


class JobEvents:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future]] = defaultdict(set)
        # Called with (job id, state) for every terminal state, after it is committed.
        self.listeners: list[Callable[[str, str], None]] = []

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

    def job_changed(self, job_id: str, state: str) -> None:
        if state not in TERMINAL_STATES:
            return
        for listener in self.listeners:
            listener(job_id, state)
        for future in self._waiters.pop(job_id, ()):
            if not future.done():
                future.set_result(state)

"""Throughput and failures per minute over the last hour, as this dashboard saw
them on the `watch` stream: the daemon keeps no per-minute series, and reading
an hour of runs for every page view is what the counters exist to avoid."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

MINUTES = 60
# What an ended attempt's state says: `failed` waits for a retry, `dead` does not.
COUNTED = {"completed": "completed", "failed": "failed", "dead": "failed"}


@dataclass
class Minute:
    start: int  # Unix time of the minute's first second
    completed: int = 0
    failed: int = 0


class History:
    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self.minutes: deque[Minute] = deque(maxlen=MINUTES)
        self.since = clock()
        self.dropped = 0

    def record(self, frame: dict) -> None:
        """Count the attempts that ended in a `jobs` frame."""
        minute = self._current()
        for job in frame.get("jobs", ()):
            kind = COUNTED.get(job["state"])
            if kind is not None:
                setattr(minute, kind, getattr(minute, kind) + 1)
        self.dropped += frame.get("dropped", 0)

    def _current(self) -> Minute:
        start = int(self.clock()) // 60 * 60
        if not self.minutes or self.minutes[-1].start != start:
            self.minutes.append(Minute(start))
        return self.minutes[-1]

    def bars(self, width: int = 600, height: int = 60) -> list[dict]:
        """One bar per minute of the last hour, oldest first, scaled to the busiest:
        x, and the heights of the completed and the failed part."""
        now = int(self.clock()) // 60 * 60
        by_start = {m.start: m for m in self.minutes}
        minutes = [
            by_start.get(now - 60 * i, Minute(now - 60 * i)) for i in range(MINUTES - 1, -1, -1)
        ]
        busiest = max((m.completed + m.failed for m in minutes), default=0) or 1
        step = width / MINUTES
        bars = []
        for i, m in enumerate(minutes):
            done_h = height * m.completed / busiest
            fail_h = height * m.failed / busiest
            bars.append(
                {
                    "x": round(i * step, 1),
                    "w": round(step * 0.8, 1),
                    "done_y": round(height - done_h, 1),
                    "done_h": round(done_h, 1),
                    "fail_y": round(height - done_h - fail_h, 1),
                    "fail_h": round(fail_h, 1),
                    "title": f"{time.strftime('%H:%M', time.localtime(m.start))}: "
                    f"{m.completed} completed, {m.failed} failed",
                }
            )
        return bars

    def totals(self) -> tuple[int, int]:
        return sum(m.completed for m in self.minutes), sum(m.failed for m in self.minutes)

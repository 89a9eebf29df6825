"""`run_stats` for every SQL backend: which runs it reads and how the answer is
put together are the same; each backend gives the three statements in its own
dialect (`STATS_SQL`, `?` marks), since counting by a condition and cutting time
into minutes are spelled differently.

It reads only the runs that ended in the last hour, through the index on their
end time, never a scan of every run, and computes percentiles from at most
PERCENTILE_SAMPLE of the latest of them (the figures: `store/views.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from queuectld.store.shared.statements import Statements
from queuectld.store.views import (
    HOUR,
    MINUTE,
    PERCENTILE_SAMPLE,
    per_minute_record,
    stats_record,
)


@dataclass(frozen=True)
class StatsSQL:
    """The statements, each with `{queue_filter}` where a queue's condition goes.

    counts: (queue, ended in the last minute, completed, failed attempts, attempts
    that made a job dead) per queue, from the marks (minute start, hour start).
    sample: (queue, run seconds, wait seconds) of the latest counted runs, from
    (hour start, limit). per_minute: (minute index, completed, failed) from (hour
    start, hour start)."""

    counts: str
    sample: str
    per_minute: str


class StatsMixin:
    sql: Statements
    STATS_SQL: StatsSQL

    def run_stats(self, now: float, queue: str | None = None, per_minute: bool = False) -> dict:
        hour = now - HOUR
        queue_filter, by_queue = ("AND j.queue = ?", [queue]) if queue is not None else ("", [])
        statements = self.STATS_SQL

        def rows(sql: str, before: list, after: tuple = ()) -> list[tuple]:
            return self.sql.all(sql.format(queue_filter=queue_filter), [*before, *by_queue, *after])

        record = stats_record(
            now,
            rows(statements.counts, [now - MINUTE, hour]),
            rows(statements.sample, [hour], (PERCENTILE_SAMPLE,)),
        )
        if per_minute:
            record["per_minute"] = per_minute_record(now, rows(statements.per_minute, [hour, hour]))
        return record

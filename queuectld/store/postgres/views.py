"""Read-only queries for people watching the queue: stats, the live view, completion.

Each one is bounded by an index: `run_stats` reads the runs that ended in the last
hour through `runs_finished`, `next_waiting_jobs` walks `jobs_waiting`, and
`job_ids_with_prefix` the unique index on `jobs.id` (bytewise, COLLATE "C").
"""

from __future__ import annotations

from typing import Any

from queuectld.store.base import JobRow
from queuectld.store.postgres.connection import Database
from queuectld.store.rows import JOB_COLUMNS, job_from_row
from queuectld.store.sql import WAITING
from queuectld.store.views import HOUR, MINUTE, PERCENTILE_SAMPLE, stats_record

# Per queue, over the runs that ended since the hour; the last run of a job now dead
# is the attempt that sent it to the DLQ.
_COUNTS = """
SELECT j.queue,
       r.finished_at >= %(minute)s AS recent,
       count(*) FILTER (WHERE r.outcome = 'completed'),
       count(*) FILTER (WHERE r.counted AND r.outcome <> 'completed'),
       count(*) FILTER (WHERE r.counted AND r.outcome <> 'completed' AND j.state = 'dead'
                        AND r.run = j.runs)
FROM runs r JOIN jobs j ON j.seq = r.job_seq
WHERE r.finished_at >= %(hour)s {queue_filter}
GROUP BY j.queue, recent
"""

_SAMPLE = """
SELECT j.queue, r.finished_at - r.started_at, r.started_at - r.due_at
FROM runs r JOIN jobs j ON j.seq = r.job_seq
WHERE r.finished_at >= %(hour)s AND r.counted {queue_filter}
ORDER BY r.finished_at DESC
LIMIT %(sample)s
"""


class PostgresViews:
    db: Database

    def run_stats(self, now: float, queue: str | None = None) -> dict:
        params: dict[str, Any] = {
            "minute": now - MINUTE,
            "hour": now - HOUR,
            "sample": PERCENTILE_SAMPLE,
        }
        queue_filter = ""
        if queue is not None:
            queue_filter = "AND j.queue = %(queue)s"
            params["queue"] = queue
        return stats_record(
            now,
            self.db.all(_COUNTS.format(queue_filter=queue_filter), params),
            self.db.all(_SAMPLE.format(queue_filter=queue_filter), params),
        )

    def next_waiting_jobs(self, limit: int) -> list[JobRow]:
        rows = self.db.all(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE state IN {WAITING} "
            "ORDER BY run_at, seq LIMIT %s",
            (limit,),
        )
        return [job_from_row(row) for row in rows]

    def job_ids_with_prefix(self, prefix: str, states: list[str] | None, limit: int) -> list[str]:
        sql = "SELECT id FROM jobs WHERE id >= %s AND id < %s"
        params: list[Any] = [prefix, prefix + "\U0010ffff"]
        if states:
            sql += " AND state = ANY(%s)"
            params.append(list(states))
        sql += " ORDER BY id LIMIT %s"
        params.append(limit)
        return [row[0] for row in self.db.all(sql, params)]

"""Read-only queries for people watching the queue: stats, the live view, completion.

Each one is bounded by an index, never a scan of every job or every run:
- `run_stats` reads the runs that ended in the last hour through `runs_finished`,
  and computes percentiles from at most PERCENTILE_SAMPLE of the latest of them;
- `next_waiting_jobs` walks `jobs_next_due` (waiting jobs by run_at);
- `job_ids_with_prefix` walks the unique index on `jobs.id`.
"""

from __future__ import annotations

from typing import Any

from queuectld.store.base import JobRow
from queuectld.store.rows import JOB_COLUMNS, job_from_row
from queuectld.store.sql import WAITING
from queuectld.store.views import HOUR, MINUTE, PERCENTILE_SAMPLE, stats_record

# Per queue, over the runs that ended since :hour; the last run of a job now dead
# is the attempt that sent it to the DLQ.
_COUNTS = """
SELECT j.queue,
       r.finished_at >= :minute AS recent,
       sum(r.outcome = 'completed'),
       sum(r.counted AND r.outcome <> 'completed'),
       sum(r.counted AND r.outcome <> 'completed' AND j.state = 'dead' AND r.run = j.runs)
FROM runs r JOIN jobs j ON j.seq = r.job_seq
WHERE r.finished_at >= :hour {queue_filter}
GROUP BY j.queue, recent
"""

_SAMPLE = """
SELECT j.queue, r.finished_at - r.started_at, r.started_at - r.due_at
FROM runs r JOIN jobs j ON j.seq = r.job_seq
WHERE r.finished_at >= :hour AND r.counted {queue_filter}
ORDER BY r.finished_at DESC
LIMIT :sample
"""


class SQLiteViews:
    conn: Any  # the SQLiteStore's connection

    def run_stats(self, now: float, queue: str | None = None) -> dict:
        params: dict[str, Any] = {
            "minute": now - MINUTE,
            "hour": now - HOUR,
            "sample": PERCENTILE_SAMPLE,
        }
        queue_filter = ""
        if queue is not None:
            queue_filter = "AND j.queue = :queue"
            params["queue"] = queue
        return stats_record(
            now,
            self.conn.execute(_COUNTS.format(queue_filter=queue_filter), params),
            self.conn.execute(_SAMPLE.format(queue_filter=queue_filter), params),
        )

    def next_waiting_jobs(self, limit: int) -> list[JobRow]:
        rows = self.conn.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE state IN {WAITING} ORDER BY run_at LIMIT ?",
            (limit,),
        ).fetchall()
        return [job_from_row(row) for row in rows]

    def job_ids_with_prefix(self, prefix: str, states: list[str] | None, limit: int) -> list[str]:
        sql = "SELECT id FROM jobs WHERE id >= ? AND id < ?"
        params: list[Any] = [prefix, prefix + "\U0010ffff"]
        if states:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            params.extend(states)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return [row[0] for row in self.conn.execute(sql, params)]

"""The stats queries of the SQLite store, for people watching the queue.

`run_stats` reads the runs that ended in the last hour through `runs_finished`,
never a scan of every run, and computes percentiles from at most
PERCENTILE_SAMPLE of the latest of them (the figures: `store/views.py`).
"""

from __future__ import annotations

from typing import Any

from queuectld.store.views import (
    HOUR,
    MINUTE,
    PERCENTILE_SAMPLE,
    per_minute_record,
    stats_record,
)

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


# Minute by minute since :hour (a run that ended since then is at least 0 in).
_PER_MINUTE = """
SELECT CAST((r.finished_at - :hour) / 60 AS INTEGER) AS minute,
       sum(r.outcome = 'completed'),
       sum(r.counted AND r.outcome <> 'completed')
FROM runs r JOIN jobs j ON j.seq = r.job_seq
WHERE r.finished_at >= :hour {queue_filter}
GROUP BY minute
"""


class SQLiteViews:
    conn: Any  # the SQLiteStore's connection

    def run_stats(self, now: float, queue: str | None = None, per_minute: bool = False) -> dict:
        params: dict[str, Any] = {
            "minute": now - MINUTE,
            "hour": now - HOUR,
            "sample": PERCENTILE_SAMPLE,
        }
        queue_filter = ""
        if queue is not None:
            queue_filter = "AND j.queue = :queue"
            params["queue"] = queue
        record = stats_record(
            now,
            self.conn.execute(_COUNTS.format(queue_filter=queue_filter), params),
            self.conn.execute(_SAMPLE.format(queue_filter=queue_filter), params),
        )
        if per_minute:
            rows = self.conn.execute(_PER_MINUTE.format(queue_filter=queue_filter), params)
            record["per_minute"] = per_minute_record(now, rows)
        return record

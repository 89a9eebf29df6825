"""The stats queries of the PostgreSQL store, for people watching the queue.

`run_stats` reads the runs that ended in the last hour through `runs_finished`
(an index that covers what it reads), never a scan of every run; the figures are
`store/views.py`'s.
"""

from __future__ import annotations

from typing import Any

from queuectld.store.postgres.connection import Database
from queuectld.store.views import (
    HOUR,
    MINUTE,
    PERCENTILE_SAMPLE,
    per_minute_record,
    stats_record,
)

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


# Minute by minute since the hour (floor: a cast to integer would round).
_PER_MINUTE = """
SELECT floor((r.finished_at - %(hour)s) / 60)::integer AS minute,
       count(*) FILTER (WHERE r.outcome = 'completed'),
       count(*) FILTER (WHERE r.counted AND r.outcome <> 'completed')
FROM runs r JOIN jobs j ON j.seq = r.job_seq
WHERE r.finished_at >= %(hour)s {queue_filter}
GROUP BY minute
"""


class PostgresViews:
    db: Database

    def run_stats(self, now: float, queue: str | None = None, per_minute: bool = False) -> dict:
        params: dict[str, Any] = {
            "minute": now - MINUTE,
            "hour": now - HOUR,
            "sample": PERCENTILE_SAMPLE,
        }
        queue_filter = ""
        if queue is not None:
            queue_filter = "AND j.queue = %(queue)s"
            params["queue"] = queue
        record = stats_record(
            now,
            self.db.all(_COUNTS.format(queue_filter=queue_filter), params),
            self.db.all(_SAMPLE.format(queue_filter=queue_filter), params),
        )
        if per_minute:
            rows = self.db.all(_PER_MINUTE.format(queue_filter=queue_filter), params)
            record["per_minute"] = per_minute_record(now, rows)
        return record

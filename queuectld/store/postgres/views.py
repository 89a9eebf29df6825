"""The stats statements of the PostgreSQL store (run by store/shared/stats.py)."""

from __future__ import annotations

from queuectld.store.shared.stats import StatsSQL

STATS_SQL = StatsSQL(
    # Per queue, over the runs that ended since the hour; the last run of a job now
    # dead is the attempt that sent it to the DLQ.
    counts="""
SELECT j.queue,
       r.finished_at >= ? AS recent,
       count(*) FILTER (WHERE r.outcome = 'completed'),
       count(*) FILTER (WHERE r.counted AND r.outcome <> 'completed'),
       count(*) FILTER (WHERE r.counted AND r.outcome <> 'completed' AND j.state = 'dead'
                        AND r.run = j.runs)
FROM runs r JOIN jobs j ON j.seq = r.job_seq
WHERE r.finished_at >= ? {queue_filter}
GROUP BY j.queue, recent
""",
    sample="""
SELECT j.queue, r.finished_at - r.started_at, r.started_at - r.due_at
FROM runs r JOIN jobs j ON j.seq = r.job_seq
WHERE r.finished_at >= ? AND r.counted {queue_filter}
ORDER BY r.finished_at DESC
LIMIT ?
""",
    # Minute by minute since the hour (floor: a cast to integer would round).
    per_minute="""
SELECT floor((r.finished_at - ?) / 60)::integer AS minute,
       count(*) FILTER (WHERE r.outcome = 'completed'),
       count(*) FILTER (WHERE r.counted AND r.outcome <> 'completed')
FROM runs r JOIN jobs j ON j.seq = r.job_seq
WHERE r.finished_at >= ? {queue_filter}
GROUP BY minute
""",
)

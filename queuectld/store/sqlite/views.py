"""The stats statements of the SQLite store (run by store/shared/stats.py)."""

from __future__ import annotations

from queuectld.store.shared.stats import StatsSQL

STATS_SQL = StatsSQL(
    # Per queue, over the runs that ended since the hour; the last run of a job now
    # dead is the attempt that sent it to the DLQ.
    counts="""
SELECT j.queue,
       r.finished_at >= ? AS recent,
       sum(r.outcome = 'completed'),
       sum(r.counted AND r.outcome <> 'completed'),
       sum(r.counted AND r.outcome <> 'completed' AND j.state = 'dead' AND r.run = j.runs)
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
    # Minute by minute since the hour (a run that ended since then is at least 0 in,
    # so the cast's truncation is a floor).
    per_minute="""
SELECT CAST((r.finished_at - ?) / 60 AS INTEGER) AS minute,
       sum(r.outcome = 'completed'),
       sum(r.counted AND r.outcome <> 'completed')
FROM runs r JOIN jobs j ON j.seq = r.job_seq
WHERE r.finished_at >= ? {queue_filter}
GROUP BY minute
""",
)

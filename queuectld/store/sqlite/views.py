"""Read-only queries for people watching the queue: stats, the live view, completion.

Each one is bounded by an index, never a scan of every job or every run:
- `run_stats` reads the runs that ended in the last hour through `runs_finished`,
  and computes percentiles from at most PERCENTILE_SAMPLE of the latest of them;
- `next_waiting_jobs` walks `jobs_next_due` (waiting jobs by run_at);
- `job_ids_with_prefix` walks the unique index on `jobs.id`.
"""

from __future__ import annotations

from typing import Any

from protocol.times import to_iso
from queuectld.store.base import JobRow
from queuectld.store.sql import WAITING
from queuectld.store.sqlite.rows import JOB_COLUMNS, job_from_row

MINUTE = 60.0
HOUR = 3600.0
PERCENTILE_SAMPLE = 10_000
PERCENTILES = (50, 90, 99)

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


def percentile_summary(values: list[float]) -> dict[str, Any]:
    """count, p50/p90/p99 (nearest rank) and max, in seconds; None when there is nothing."""
    summary: dict[str, Any] = {"count": len(values)}
    ordered = sorted(values)
    for p in PERCENTILES:
        if ordered:
            rank = max(1, -(-p * len(ordered) // 100))  # ceil(p/100 * n), 1-based
            summary[f"p{p}"] = round(ordered[rank - 1], 6)
        else:
            summary[f"p{p}"] = None
    summary["max"] = round(ordered[-1], 6) if ordered else None
    return summary


def _empty_counts() -> dict[str, dict[str, int]]:
    return {
        "completed": {"minute": 0, "hour": 0},
        "failed_attempts": {"minute": 0, "hour": 0},
        "dead": {"minute": 0, "hour": 0},
    }


def _figures(counts: dict, runs: list[float], waits: list[float]) -> dict[str, Any]:
    figures: dict[str, Any] = dict(counts)
    figures["throughput_per_minute"] = {
        "minute": counts["completed"]["minute"],
        "hour": round(counts["completed"]["hour"] / 60, 3),
    }
    rates = {}
    for window in ("minute", "hour"):
        ended = counts["completed"][window] + counts["failed_attempts"][window]
        rates[window] = round(counts["completed"][window] / ended, 4) if ended else None
    figures["success_rate"] = rates
    figures["run_seconds"] = percentile_summary(runs)
    figures["wait_seconds"] = percentile_summary(waits)
    return figures


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
        counts: dict[str, dict] = {}
        for name, recent, completed, failed, dead in self.conn.execute(
            _COUNTS.format(queue_filter=queue_filter), params
        ):
            per_queue = counts.setdefault(name, _empty_counts())
            windows = ("minute", "hour") if recent else ("hour",)
            for window in windows:
                per_queue["completed"][window] += completed or 0
                per_queue["failed_attempts"][window] += failed or 0
                per_queue["dead"][window] += dead or 0
        runs: dict[str, list[float]] = {}
        waits: dict[str, list[float]] = {}
        sampled = 0
        for name, ran, waited in self.conn.execute(
            _SAMPLE.format(queue_filter=queue_filter), params
        ):
            sampled += 1
            runs.setdefault(name, []).append(ran)
            if waited is not None:  # runs from before due times were recorded have none
                waits.setdefault(name, []).append(max(0.0, waited))
        queues = {
            name: _figures(
                counts.get(name, _empty_counts()), runs.get(name, []), waits.get(name, [])
            )
            for name in sorted(set(counts) | set(runs))
        }
        total_counts = _empty_counts()
        for per_queue in counts.values():
            for figure, windows in per_queue.items():
                for window, value in windows.items():
                    total_counts[figure][window] += value
        total = _figures(
            total_counts,
            [v for values in runs.values() for v in values],
            [v for values in waits.values() for v in values],
        )
        return {
            "at": to_iso(now),
            "windows": {"minute": MINUTE, "hour": HOUR},
            "sampled": sampled,
            "sample_limit": PERCENTILE_SAMPLE,
            "total": total,
            "queues": queues,
        }

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

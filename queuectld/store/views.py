"""What people watching the queue see, made from what a backend read: the figures of
`stats` and the record of each queue in `queue list`.

A backend runs the queries (bounded by its indexes) and hands the rows here, so
the figures are computed alike whatever the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocol.messages import JOB_STATES
from protocol.times import to_iso

MINUTE = 60.0
HOUR = 3600.0
PERCENTILE_SAMPLE = 10_000
PERCENTILES = (50, 90, 99)
QUEUE_DEFAULTS = {"concurrency": 0, "priority": 0, "paused": False, "on_finish": None}
QUEUE_FIELDS = tuple(QUEUE_DEFAULTS)


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


def stats_record(now: float, counted: Iterable[tuple], sample: Iterable[tuple]) -> dict:
    """The `stats` answer from the rows of two queries over the runs that ended in the
    last hour: `counted` (queue, ended in the last minute, completed, failed attempts,
    attempts that made a job dead) and `sample` (queue, run seconds, wait seconds or
    None) of at most PERCENTILE_SAMPLE of the latest counted runs."""
    counts: dict[str, dict] = {}
    for name, recent, completed, failed, dead in counted:
        per_queue = counts.setdefault(name, _empty_counts())
        windows = ("minute", "hour") if recent else ("hour",)
        for window in windows:
            per_queue["completed"][window] += completed or 0
            per_queue["failed_attempts"][window] += failed or 0
            per_queue["dead"][window] += dead or 0
    runs: dict[str, list[float]] = {}
    waits: dict[str, list[float]] = {}
    sampled = 0
    for name, ran, waited in sample:
        sampled += 1
        runs.setdefault(name, []).append(ran)
        if waited is not None:  # runs from before due times were recorded have none
            waits.setdefault(name, []).append(max(0.0, waited))
    queues = {
        name: _figures(counts.get(name, _empty_counts()), runs.get(name, []), waits.get(name, []))
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


def per_minute_record(now: float, rows: Iterable[tuple]) -> list[dict]:
    """The hour before `now` in 60 minutes, oldest first, from rows of (minute index
    since the hour began, completed attempts, failed attempts)."""
    start = now - HOUR
    minutes = [{"start": to_iso(start + 60 * i), "completed": 0, "failed": 0} for i in range(60)]
    for index, completed, failed in rows:
        minute = minutes[min(max(int(index), 0), 59)]  # a run ending at `now` is the last's
        minute["completed"] += completed or 0
        minute["failed"] += failed or 0
    return minutes


def empty_queue_counts() -> dict[str, int]:
    return dict.fromkeys(JOB_STATES, 0)


def queue_record(
    name: str,
    settings: dict | None,
    counts: dict[str, int] | None,
    oldest: float | None,
    now: float,
) -> dict:
    """One queue of `queue list`: its settings (defaults where it has none), its jobs by
    state, and how long its earliest claimable job has been due (None: none is due)."""
    queue_settings = {**QUEUE_DEFAULTS, **(settings or {})}
    queue_counts = counts or empty_queue_counts()
    return {
        "name": name,
        "jobs": queue_counts,
        "running": queue_counts["processing"],
        "concurrency": queue_settings["concurrency"],
        "priority": queue_settings["priority"],
        "paused": queue_settings["paused"],
        "on_finish": queue_settings["on_finish"],
        "oldest_due_age": (
            round(now - oldest, 3) if oldest is not None and oldest <= now else None
        ),
    }

"""4. End to end: a backlog of `true` jobs drained by N workers, against the spawn floor.

The jobs are enqueued with one `run_at` a little in the future, while the
fleet is up and idle; the daemon's timer releases them all at that moment.
The clock runs from that moment until the client hears that the last job is
done, so timer, claims, result commits and the final answer are all counted.

Each run measures the spawn floor right before the drain, and the ratio is
the median of the runs' ratios: on a machine whose load changes (other
processes), a floor taken minutes apart would make the ratio drift.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.daemon import BenchDaemon
from bench.report import Figure, runs_detail
from bench.scenarios.spawn_floor import spawn_rate
from bench.stats import median
from protocol.times import to_iso

SCENARIO = "4 end to end"
ENQUEUE_MARGIN = 1.0  # seconds, plus the estimated enqueue time, before the jobs fall due


def drain_seconds(workers: int, jobs: int) -> float:
    """Seconds from the moment `jobs` queued `true` jobs fall due until all completed."""
    with BenchDaemon(workers=workers) as daemon, daemon.client() as client:
        due = time.time() + ENQUEUE_MARGIN + jobs / 20_000
        specs = ({"command": "true", "run_at": to_iso(due)} for _ in range(jobs))
        ids = [job_id for batch in client.enqueue_many(specs) for job_id in batch]
        if time.time() >= due - 0.05:
            raise RuntimeError("enqueueing the backlog took longer than its margin")
        result = client.wait(ids)
        finished = time.time()
        # run_at is carried with millisecond precision; the timer fires at that instant.
        released = round(due, 3)
        if not result["done"] or set(result["states"].values()) != {"completed"}:
            raise RuntimeError(f"not every job completed: {set(result['states'].values())}")
    return finished - released


def drain_runs(ctx: Context, workers: int) -> dict:
    """Paired (spawn floor, drain rate) runs with this many workers, once per suite run."""

    def measure() -> dict:
        jobs = ctx.profile.drain_jobs
        floors, rates = [], []
        for i in range(ctx.profile.runs):
            floors.append(spawn_rate(workers, jobs))
            rates.append(jobs / drain_seconds(workers, jobs))
            ctx.log(
                f"drain N={workers} run {i + 1}: {rates[-1]:,.0f} jobs/s "
                f"(spawn floor just before: {floors[-1]:,.0f}/s)"
            )
        ratios = [r / f for r, f in zip(rates, floors, strict=True)]
        return {
            "rate": median(rates),
            "rates": rates,
            "floor": median(floors),
            "ratio": median(ratios),
            "ratios": ratios,
        }

    return ctx.once(f"drain-{workers}", measure)


def drain_rate(ctx: Context, workers: int) -> tuple[float, list[float]]:
    """Our median drain rate with this many workers, and its runs."""
    runs = drain_runs(ctx, workers)
    return runs["rate"], runs["rates"]


def run(ctx: Context) -> list[Figure]:
    figures = []
    for n in (ctx.cores, 2 * ctx.cores):
        runs = drain_runs(ctx, n)
        figures.append(
            Figure(
                SCENARIO,
                f"N={n} workers",
                runs["rate"],
                "jobs/s",
                key=f"drain.{n}",
                detail=runs_detail(runs["rates"], "jobs/s", ctx.profile.drain_jobs, "jobs"),
            )
        )
        ratios = ", ".join(f"{r:.2f}" for r in runs["ratios"])
        figures.append(
            Figure(
                SCENARIO,
                f"N={n} workers, ratio to spawn floor",
                runs["ratio"],
                "x",
                key=f"drain.ratio.{n}",
                detail=f"floor measured before each run (median {runs['floor']:,.0f}/s); "
                f"runs: {ratios}",
            )
        )
    return figures

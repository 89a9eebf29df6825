"""4. End to end: a backlog of `true` jobs drained by N workers, against the spawn floor.

The jobs are enqueued with one `run_at` a little in the future, while the
fleet is up and idle; the daemon's timer releases them all at that moment.
The clock runs from that moment until the client hears that the last job is
done, so timer, claims, result commits and the final answer are all counted.

Each run measures the spawn floor right before the drain, and the ratio is
the median of the runs' ratios: on a machine whose load changes (other
processes), a floor taken minutes apart would make the ratio drift.

Each run also reads where the CPU went, per job: the daemon's own time, the
workers' own, and the jobs' (the workers' reaped children): what the queue
costs on top of the processes it starts.
"""

from __future__ import annotations

import time

import psutil

from bench.context import Context
from bench.daemon import BenchDaemon
from bench.report import Figure, runs_detail
from bench.scenarios.spawn_floor import spawn_rate
from bench.stats import median
from protocol.times import to_iso

SCENARIO = "4 end to end"
ENQUEUE_MARGIN = 1.0  # seconds, plus the estimated enqueue time, before the jobs fall due


def _cpu_seconds(daemon: psutil.Process, workers: list[psutil.Process]) -> tuple[float, ...]:
    """CPU seconds so far of the daemon, of its workers, and of the workers' reaped jobs."""
    own = daemon.cpu_times()
    theirs = [w.cpu_times() for w in workers]
    return (
        own.user + own.system,
        sum(t.user + t.system for t in theirs),
        sum(t.children_user + t.children_system for t in theirs),
    )


def drain_seconds(workers: int, jobs: int) -> tuple[float, tuple[float, ...]]:
    """Seconds from the moment `jobs` queued `true` jobs fall due until all completed,
    and the microseconds of CPU per job of the daemon, the workers and the jobs."""
    with BenchDaemon(workers=workers) as daemon, daemon.client() as client:
        due = time.time() + ENQUEUE_MARGIN + jobs / 20_000
        specs = ({"command": "true", "run_at": to_iso(due)} for _ in range(jobs))
        ids = [job_id for batch in client.enqueue_many(specs) for job_id in batch]
        if time.time() >= due - 0.05:
            raise RuntimeError("enqueueing the backlog took longer than its margin")
        fleet = daemon.worker_processes()
        before = _cpu_seconds(daemon.process(), fleet)
        result = client.wait(ids)
        finished = time.time()
        after = _cpu_seconds(daemon.process(), fleet)
        # run_at is carried with millisecond precision; the timer fires at that instant.
        released = round(due, 3)
        if not result["done"] or set(result["states"].values()) != {"completed"}:
            raise RuntimeError(f"not every job completed: {set(result['states'].values())}")
    per_job = tuple((b - a) / jobs * 1e6 for a, b in zip(before, after, strict=True))
    return finished - released, per_job


def drain_runs(ctx: Context, workers: int) -> dict:
    """Paired (spawn floor, drain rate) runs with this many workers, once per suite run."""

    def measure() -> dict:
        jobs = ctx.profile.drain_jobs
        floors, rates, costs = [], [], []
        for i in range(ctx.profile.runs):
            floors.append(spawn_rate(workers, jobs))
            seconds, cost = drain_seconds(workers, jobs)
            rates.append(jobs / seconds)
            costs.append(cost)
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
            "cpu": [median([c[i] for c in costs]) for i in range(3)],
        }

    return ctx.once(f"drain-{workers}", measure)


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
        daemon_us, workers_us, jobs_us = runs["cpu"]
        figures.append(
            Figure(
                SCENARIO,
                f"N={n} workers, queue CPU per job (daemon + workers)",
                daemon_us + workers_us,
                "us",
                key=f"drain.cpu.{n}",
                detail=f"daemon {daemon_us:.0f} us + workers {workers_us:.0f} us on top of "
                f"the job's own {jobs_us:.0f} us (median of runs)",
            )
        )
    return figures
